"""The one way this package reaches online services (VizieR, SkyView).

Three pieces, modelled on astroquery's ``query.py`` but with the failure modes a batch
survey cannot afford spelled out:

* ``RemoteRequest``: what is asked, described once, hashed into a cache key.
* ``ResponseCache``: answers on disk under ``survey.config.cache_dir()``, keyed by that
  hash, with an expiry (``conf.cache_days``), atomic writes (temporary file + rename, so a
  killed worker never leaves half a file), and a checksum so a damaged entry is removed and
  fetched again instead of poisoning every later run.
* ``retry`` and ``fetch``: every attempt has an explicit timeout (``conf.timeout``); a
  transient failure (connection refused or reset, timeout, HTTP 5xx/429, pyvo's
  ``DALServiceError``) is retried with exponential back-off up to ``conf.retries``
  attempts; anything else, and the last transient failure, becomes a
  ``RemoteServiceError`` that names the service, the request and the offline fix.

Nothing here knows about catalogues or images: callers pass a ``download`` callable (one
attempt, given the timeout) and a ``parse`` callable (bytes -> value, raising on a bad
answer). Parsing inside ``fetch`` is what lets a cached entry that no longer parses be
dropped and fetched again, as astroquery's vizier does with ``remove_cache_file``.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import requests
from pyvo.dal import DALServiceError
from requests.adapters import HTTPAdapter

from survey.config import cache_dir, conf
from survey.exceptions import RemoteServiceError

T = TypeVar("T")

BACKOFF_S = 1.0
"""First back-off pause in seconds; it doubles after each failed attempt."""

_CACHE_SUBDIR = "remote"
_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})

# --------------------------------------------------------------------------------------
# Requests and their cache keys
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteRequest:
    """One question to one online service, described well enough to cache its answer.

    Attributes
    ----------
    service : str
        Human name of the service (``"VizieR"``, ``"SkyView"``); used in messages and as
        the cache sub-folder.
    url : str
        Endpoint the request goes to (part of the key: a mirror may answer differently).
    params : Mapping[str, Any]
        Everything that determines the answer (query payload, survey, position, pixels).
        Must be JSON-serialisable; key order does not matter.
    label : str
        Short description for messages, e.g. ``"tile 5/1234, band 72-103"``.
    """

    service: str
    url: str
    params: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""

    def key(self) -> str:
        """SHA-256 of the canonical JSON of (service, url, params): the cache key.

        >>> RemoteRequest("VizieR", "https://x/viz-bin/votable", {"a": 1, "b": 2}).key() == \
RemoteRequest("VizieR", "https://x/viz-bin/votable", {"b": 2, "a": 1}).key()
        True
        """
        canonical = json.dumps([self.service, self.url, dict(self.params)], sort_keys=True, default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()

    def describe(self) -> str:
        """One line naming the request for error messages."""
        return f"{self.label} ({self.url})" if self.label else self.url


# --------------------------------------------------------------------------------------
# On-disk cache
# --------------------------------------------------------------------------------------


class ResponseCache:
    """Answers of online services stored on disk, one file per request hash.

    Each entry is two files: ``<key>.bin`` (the raw answer, byte for byte, so a FITS answer
    is itself a valid FITS file) and ``<key>.json`` (its SHA-256, size, time and request).
    The metadata file is written last, so an entry without it is incomplete and ignored.

    Parameters
    ----------
    directory : path-like, optional
        Cache folder; default ``survey.config.cache_dir() / "remote"``.
    max_age_days : float, optional
        Entries older than this are treated as missing (default ``conf.cache_days``);
        a negative value never expires (``None`` takes ``conf.cache_days``).
    """

    def __init__(self, directory: str | Path | None = None, *, max_age_days: float | None = None):
        self.directory = Path(directory) if directory is not None else cache_dir() / _CACHE_SUBDIR
        self.max_age_days = float(conf.cache_days) if max_age_days is None else max_age_days

    def paths(self, key: str) -> tuple[Path, Path]:
        """(content file, metadata file) of ``key``."""
        return self.directory / f"{key}.bin", self.directory / f"{key}.json"

    def get(self, key: str) -> bytes | None:
        """The cached answer, or None when missing, expired or damaged (damaged is removed)."""
        content_path, meta_path = self.paths(key)
        try:
            meta = json.loads(meta_path.read_text())
            content = content_path.read_bytes()
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            self.remove(key)
            return None
        if hashlib.sha256(content).hexdigest() != meta.get("sha256"):
            self.remove(key)
            return None
        if self._expired(float(meta.get("created", 0.0))):
            return None
        return content

    def put(self, key: str, content: bytes, *, request: RemoteRequest | None = None) -> Path:
        """Store ``content`` atomically; return the content file's path.

        Parameters
        ----------
        key : str
            Cache key, normally ``RemoteRequest.key()``; names both files.
        content : bytes
            The raw answer, stored byte for byte with its SHA-256.
        request : RemoteRequest, optional
            Recorded (service, url, label) in the metadata file, for a person inspecting
            the cache; not used when reading.

        Returns
        -------
        pathlib.Path
            The ``<key>.bin`` content file.
        """
        content_path, meta_path = self.paths(key)
        meta = {
            "sha256": hashlib.sha256(content).hexdigest(),
            "size": len(content),
            "created": time.time(),
            "request": None if request is None else {"service": request.service, "url": request.url, "label": request.label},
        }
        _atomic_write(content_path, content)
        _atomic_write(meta_path, json.dumps(meta, indent=1, default=str).encode())
        return content_path

    def remove(self, key: str) -> None:
        """Delete an entry (both files); missing files are fine."""
        for path in self.paths(key):
            path.unlink(missing_ok=True)

    def _expired(self, created: float) -> bool:
        if self.max_age_days is None or self.max_age_days < 0:
            return False
        return time.time() - created > self.max_age_days * 86400.0


def _atomic_write(path: Path, content: bytes) -> None:
    """Write via a temporary file in the same folder and rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --------------------------------------------------------------------------------------
# Timeouts, retries, errors
# --------------------------------------------------------------------------------------


class _TimeoutAdapter(HTTPAdapter):
    """An HTTP adapter that gives every request a timeout unless one is passed.

    astroquery's SkyView issues its form requests with ``timeout=None`` (wait for ever);
    mounting this adapter on its session bounds them without patching astroquery.
    """

    def __init__(self, timeout_s: float, **kwargs: Any):
        self.timeout_s = timeout_s
        super().__init__(max_retries=0, **kwargs)

    def send(self, request, **kwargs):  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout_s
        return super().send(request, **kwargs)


def apply_timeout(session: requests.Session, timeout_s: float) -> requests.Session:
    """Give every request of ``session`` (http and https) a default timeout; return it."""
    adapter = _TimeoutAdapter(timeout_s)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def new_session(timeout_s: float | None = None) -> requests.Session:
    """A requests session whose requests time out after ``timeout_s`` (default ``conf.timeout``)."""
    return apply_timeout(requests.Session(), float(conf.timeout if timeout_s is None else timeout_s))


def is_transient(error: BaseException) -> bool:
    """True for failures worth another attempt: no connection, timeout, server overload.

    A 4xx answer (other than 429) means the request itself is wrong; retrying cannot help.
    """
    if isinstance(error, requests.HTTPError):
        status = error.response.status_code if error.response is not None else None
        return status in _RETRYABLE_STATUS
    return isinstance(
        error,
        (requests.ConnectionError, requests.Timeout, socket.timeout, TimeoutError, ConnectionError, DALServiceError),
    )


def retry(
    call: Callable[[], T],
    *,
    attempts: int,
    backoff_s: float = BACKOFF_S,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``call()`` until it succeeds, at most ``attempts`` times, backing off exponentially.

    Waits ``backoff_s``, ``2 * backoff_s``, ``4 * backoff_s`` ... between attempts. Only
    transient errors (``is_transient``) are retried; others propagate at once, as does the
    last transient error. Wrapping into ``RemoteServiceError`` is ``fetch``'s job, because
    only it knows which request failed.

    Parameters
    ----------
    call : callable
        ``call() -> value``: one attempt.
    attempts : int
        Most calls made, at least 1.
    backoff_s : float
        First pause in seconds.
    sleep : callable
        ``sleep(seconds)``; ``time.sleep`` unless a test replaces it.

    Returns
    -------
    object
        What the first successful ``call()`` returned.

    Raises
    ------
    ValueError
        ``attempts`` is below 1.

    Examples
    --------
    >>> calls = []
    >>> def flaky():
    ...     calls.append(1)
    ...     if len(calls) < 3:
    ...         raise requests.ConnectionError("refused")
    ...     return "ok"
    >>> retry(flaky, attempts=3, backoff_s=0.0), len(calls)
    ('ok', 3)
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    for attempt in range(attempts):
        try:
            return call()
        except Exception as error:
            if attempt == attempts - 1 or not is_transient(error):
                raise
            sleep(backoff_s * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def remote_error(
    request: RemoteRequest, error: BaseException, *, attempts: int, offline_hint: str = ""
) -> RemoteServiceError:
    """A RemoteServiceError naming the service, the request, what went wrong and the fix.

    Parameters
    ----------
    request : RemoteRequest
        The request that failed; its service and description start the message.
    error : BaseException
        The last failure; an HTTP status or timeout is spelled out.
    attempts : int
        Attempts made; quoted only when ``error`` is transient (others are not retried).
    offline_hint : str
        The local alternative to suggest; when empty the message suggests checking the
        network or raising ``conf.timeout`` / ``conf.retries`` instead.

    Returns
    -------
    RemoteServiceError
        The error, for the caller to raise (``from error``).
    """
    what = _describe_error(error)
    tried = f" after {attempts} attempt{'s' if attempts != 1 else ''}" if is_transient(error) else ""
    fix = (
        f" No network? Use the local files: {offline_hint}"
        if offline_hint
        else f" Check the network, or raise survey.config.conf.timeout (now {conf.timeout} s) / retries."
    )
    return RemoteServiceError(f"{request.service}: {request.describe()} failed{tried}: {what}.{fix}")


def _describe_error(error: BaseException) -> str:
    if isinstance(error, requests.HTTPError) and error.response is not None:
        return f"HTTP {error.response.status_code} {error.response.reason} from {error.response.url}"
    if isinstance(error, (requests.Timeout, socket.timeout, TimeoutError)):
        return f"timed out ({type(error).__name__}: {error})"
    return f"{type(error).__name__}: {error}"


# --------------------------------------------------------------------------------------
# Fetch = cache lookup + timed, retried download + parse
# --------------------------------------------------------------------------------------


def http_bytes(
    session: requests.Session,
    method: str,
    url: str,
    *,
    timeout_s: float,
    params: Mapping[str, Any] | None = None,
    data: Any = None,
) -> bytes:
    """One HTTP request with an explicit timeout; the body, or ``requests.HTTPError``.

    Parameters
    ----------
    session : requests.Session
        Session to send it with.
    method : str
        HTTP method (``"GET"``, ``"POST"``).
    url : str
        Where to send it.
    timeout_s : float
        Seconds to wait for the connection and for each read.
    params : mapping, optional
        Query-string parameters.
    data : optional
        Request body (bytes, str or a form mapping), as ``requests`` takes it.

    Returns
    -------
    bytes
        The response body.

    Raises
    ------
    requests.HTTPError
        The server answered with a 4xx or 5xx status.
    """
    response = session.request(method, url, params=params, data=data, timeout=timeout_s)
    response.raise_for_status()
    return response.content


def fetch(
    request: RemoteRequest,
    download: Callable[[float], bytes],
    *,
    parse: Callable[[bytes], T],
    timeout_s: float | None = None,
    retries: int | None = None,
    backoff_s: float = BACKOFF_S,
    use_cache: bool = True,
    cache: ResponseCache | None = None,
    offline_hint: str = "",
) -> T:
    """The parsed answer to ``request``: from the cache if fresh and intact, else downloaded.

    Parameters
    ----------
    request : RemoteRequest
        What is asked; its ``key()`` names the cache entry.
    download : callable
        ``download(timeout_s) -> bytes``: one attempt, which must honour the timeout.
    parse : callable
        ``parse(content) -> value``; raises on a bad answer. A cached entry that fails to
        parse is removed and fetched again; a fresh answer that fails is not cached and
        becomes a RemoteServiceError.
    timeout_s, retries : optional
        Per-attempt timeout in seconds and number of attempts (``conf.timeout``,
        ``conf.retries``). Small values make an offline run fail fast.
    backoff_s : float
        First pause between attempts (doubles each time).
    use_cache : bool
        Read and write the on-disk cache.
    cache : ResponseCache, optional
        Cache to use (default: a ``ResponseCache()`` under ``cache_dir()``).
    offline_hint : str
        The local alternative, quoted in the error ("use the local files: ...").

    Returns
    -------
    object
        What ``parse`` returns for the cached or downloaded answer.

    Raises
    ------
    RemoteServiceError
        The service could not be reached within the attempts, or answered with an error or
        something ``parse`` rejects.
    """
    timeout_s = float(conf.timeout if timeout_s is None else timeout_s)
    attempts = int(conf.retries if retries is None else retries)
    key = request.key()
    store = (cache or ResponseCache()) if use_cache else None
    if store is not None and (cached := _parse_cached(store, key, parse)) is not None:
        return cached[0]
    try:
        content = retry(lambda: download(timeout_s), attempts=max(attempts, 1), backoff_s=backoff_s)
    except Exception as error:
        raise remote_error(request, error, attempts=max(attempts, 1), offline_hint=offline_hint) from error
    try:
        value = parse(content)
    except Exception as error:
        raise RemoteServiceError(
            f"{request.service}: {request.describe()} answered with something unusable "
            f"({type(error).__name__}: {error}); not cached."
        ) from error
    if store is not None:
        store.put(key, content, request=request)
    return value


def _parse_cached(store: ResponseCache, key: str, parse: Callable[[bytes], T]) -> tuple[T] | None:
    """(parsed value,) from the cache, or None; an entry that no longer parses is removed."""
    content = store.get(key)
    if content is None:
        return None
    try:
        return (parse(content),)
    except Exception:
        store.remove(key)
        return None
