"""survey.remote: cache by request hash, timed retries, clear errors; against a fake server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import time

import pytest
import requests
from pyvo.dal import DALServiceError

from survey import remote
from survey.exceptions import RemoteServiceError
from tests.survey.fake_services import (
    FakeServer,
    _isolated_network_state,  # noqa: F401  (autouse fixture)
    closed_port_url,
    silent_server,
)


@pytest.fixture
def server():
    fake = FakeServer({"/data": lambda seen: (200, "text/plain", b"payload:" + seen.body)})
    yield fake
    fake.stop()


def _request(url: str, **params) -> remote.RemoteRequest:
    return remote.RemoteRequest("Demo", url, params or {"q": 1}, label="demo request")


def _download(url: str):
    session = remote.new_session(2.0)
    return lambda timeout: remote.http_bytes(session, "POST", url, data=b"abc", timeout_s=timeout)


# --------------------------------------------------------------------------------------
# Request keys
# --------------------------------------------------------------------------------------


def test_key_ignores_param_order_but_not_values():
    a = remote.RemoteRequest("VizieR", "https://x", {"a": 1, "b": "two"})
    assert a.key() == remote.RemoteRequest("VizieR", "https://x", {"b": "two", "a": 1}).key()
    assert a.key() != remote.RemoteRequest("VizieR", "https://x", {"a": 2, "b": "two"}).key()
    assert a.key() != remote.RemoteRequest("VizieR", "https://mirror", {"a": 1, "b": "two"}).key()
    assert a.key() != remote.RemoteRequest("SkyView", "https://x", {"a": 1, "b": "two"}).key()


# --------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------


def test_cache_round_trip_is_atomic(tmp_path):
    cache = remote.ResponseCache(tmp_path)
    path = cache.put("k1", b"\x00bytes\xff")
    assert path.read_bytes() == b"\x00bytes\xff"  # stored byte for byte (a FITS stays a FITS)
    assert cache.get("k1") == b"\x00bytes\xff"
    assert cache.get("other") is None
    assert not list(tmp_path.glob("*.tmp")), "temporary files must be renamed away"


def test_cache_expires(tmp_path):
    cache = remote.ResponseCache(tmp_path, max_age_days=1.0)
    cache.put("k", b"old")
    _, meta_path = cache.paths("k")
    meta = json.loads(meta_path.read_text())
    meta["created"] = time.time() - 2 * 86400
    meta_path.write_text(json.dumps(meta))
    assert cache.get("k") is None
    assert remote.ResponseCache(tmp_path, max_age_days=-1).get("k") == b"old"  # negative: never expires


def test_damaged_cache_entry_is_removed(tmp_path):
    cache = remote.ResponseCache(tmp_path)
    content_path = cache.put("k", b"good answer")
    content_path.write_bytes(b"good answ")  # truncated by a crash or a full disk
    assert cache.get("k") is None
    assert not content_path.exists() and not cache.paths("k")[1].exists()


def test_entry_without_metadata_is_ignored(tmp_path):
    cache = remote.ResponseCache(tmp_path)
    cache.put("k", b"x")
    cache.paths("k")[1].unlink()
    assert cache.get("k") is None


def test_default_cache_lives_under_halo_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HALO_CACHE_DIR", str(tmp_path))
    assert remote.ResponseCache().directory == tmp_path / "remote"


# --------------------------------------------------------------------------------------
# Retries
# --------------------------------------------------------------------------------------


def test_retry_backs_off_exponentially():
    sleeps: list[float] = []
    calls = iter([requests.ConnectionError("refused"), socket.timeout("slow"), "ok"])

    def flaky():
        outcome = next(calls)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert remote.retry(flaky, attempts=3, backoff_s=0.5, sleep=sleeps.append) == "ok"
    assert sleeps == [0.5, 1.0]


def test_retry_gives_up_after_the_last_attempt():
    calls = []

    def down():
        calls.append(1)
        raise requests.ConnectionError("refused")

    with pytest.raises(requests.ConnectionError):
        remote.retry(down, attempts=2, backoff_s=0.0)
    assert len(calls) == 2


def test_retry_does_not_repeat_a_wrong_request():
    calls = []

    def bad():
        calls.append(1)
        raise ValueError("malformed")

    with pytest.raises(ValueError):
        remote.retry(bad, attempts=5, backoff_s=0.0)
    assert len(calls) == 1


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (requests.ConnectionError(), True),
        (requests.Timeout(), True),
        (socket.timeout(), True),
        (DALServiceError("VO service down"), True),
        (ValueError("parse"), False),
    ],
)
def test_transient_errors(error, transient):
    assert remote.is_transient(error) is transient


@pytest.mark.parametrize(("status", "transient"), [(503, True), (429, True), (404, False), (400, False)])
def test_http_status_transience(status, transient):
    response = requests.Response()
    response.status_code = status
    assert remote.is_transient(requests.HTTPError(response=response)) is transient


# --------------------------------------------------------------------------------------
# fetch: cache + timed retries + parse, against a fake server
# --------------------------------------------------------------------------------------


def test_fetch_caches_and_serves_the_cache_with_the_server_gone(server):
    url = f"{server.url}/data"
    first = remote.fetch(_request(url), _download(url), parse=bytes.decode, retries=1)
    assert first == "payload:abc"
    server.stop()
    second = remote.fetch(_request(url), _download(url), parse=bytes.decode, retries=1)
    assert second == first
    assert len(server.seen) == 1


def test_fetch_retries_after_a_server_error(server):
    url = f"{server.url}/data"
    server.fail_next(1, status=503)
    assert remote.fetch(_request(url), _download(url), parse=bytes.decode, retries=2, backoff_s=0.0) == "payload:abc"
    assert len(server.seen) == 2


def test_fetch_does_not_retry_a_client_error(server):
    url = f"{server.url}/missing"
    with pytest.raises(RemoteServiceError, match=r"Demo: demo request .*/missing.*HTTP 404"):
        remote.fetch(_request(url), _download(url), parse=bytes.decode, retries=3, backoff_s=0.0)
    assert len(server.seen) == 1


def test_unreachable_server_fails_fast_with_the_offline_fix():
    url = f"{closed_port_url()}/data"
    start = time.monotonic()
    with pytest.raises(RemoteServiceError, match=r"(?s)Demo: demo request.*after 2 attempts.*No network\? Use the local files: x\.dat"):
        remote.fetch(_request(url), _download(url), parse=bytes.decode, timeout_s=1.0, retries=2, backoff_s=0.05,
                     offline_hint="x.dat")
    assert time.monotonic() - start < 3.0


def test_silent_server_times_out():
    sock, base = silent_server()
    try:
        start = time.monotonic()
        with pytest.raises(RemoteServiceError, match="timed out"):
            remote.fetch(_request(base), _download(base), parse=bytes.decode, timeout_s=0.3, retries=1)
        assert time.monotonic() - start < 3.0
    finally:
        sock.close()


def test_session_default_timeout_applies_without_an_explicit_one():
    sock, base = silent_server()
    try:
        with pytest.raises(requests.Timeout):
            remote.new_session(0.3).get(base)  # no timeout= given: the adapter supplies one
    finally:
        sock.close()


def test_unparseable_answer_is_an_error_and_not_cached(server, tmp_path):
    url = f"{server.url}/data"
    cache = remote.ResponseCache(tmp_path)

    def reject(content: bytes) -> str:
        raise ValueError("not a table")

    with pytest.raises(RemoteServiceError, match="answered with something unusable.*not a table"):
        remote.fetch(_request(url), _download(url), parse=reject, retries=1, cache=cache)
    assert cache.get(_request(url).key()) is None


def test_cached_entry_that_no_longer_parses_is_refetched(server, tmp_path):
    url = f"{server.url}/data"
    cache = remote.ResponseCache(tmp_path)
    request = _request(url)
    cache.put(request.key(), b"stale junk")

    def strict(content: bytes) -> str:
        if not content.startswith(b"payload:"):
            raise ValueError("bad")
        return content.decode()

    assert remote.fetch(request, _download(url), parse=strict, retries=1, cache=cache) == "payload:abc"
    assert len(server.seen) == 1
    assert cache.get(request.key()) == b"payload:abc"


def test_use_cache_false_always_asks_the_server(server):
    url = f"{server.url}/data"
    for _ in range(2):
        remote.fetch(_request(url), _download(url), parse=bytes.decode, retries=1, use_cache=False)
    assert len(server.seen) == 2
