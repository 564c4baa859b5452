"""One run at a time per output directory: an exclusive lock file naming its owner.

Two runs writing one output directory contradict each other: a ``--resume`` started while
the first run still works rewrites the manifest under it, and ``--overwrite`` would delete
its catalogues. A run therefore holds ``<output>/halo-survey.lock`` from before it writes
anything until it ends, and a second run is refused with a message naming the holder.

The lock file is JSON: the owner (user), host, process id (and, on Linux, the process's
start time, so a reused pid is not taken for the old run), the start time, the run id, the
command, and a heartbeat the holder rewrites every ``HEARTBEAT_S`` seconds.

A lock is **stale** when its run is certainly gone, and is then replaced with a warning:

- on the same host, when its process no longer exists (or is another process with the
  same pid): a run killed with ``kill -9``, or a machine that rebooted;
- on another host (a shared file system), when its heartbeat is older than
  ``STALE_AFTER_S``: its driver has not been alive for that long.

Local and network file systems create the lock atomically (``O_CREAT | O_EXCL``), so of two
runs started together exactly one gets it. **Object stores** (``s3://``, ``gs://``) have no
such create: there the lock is advisory, written after checking that none exists, so a
second run started later is refused, but two runs started within the same second or two
can both take it. The lock is reentrant within a process (the CLI takes it before
starting Ray, ``survey.run.pipeline.run`` again around the stream).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

from upath import UPath

from survey.exceptions import BadInputError
from survey.output import paths
from survey.output.store import check_writable

logger = logging.getLogger(__name__)

LOCK_FILENAME = "halo-survey.lock"
"""The lock's name inside the output directory (visible: an operator should see it)."""

HEARTBEAT_S = 30.0
"""Seconds between two heartbeats of the holder."""

STALE_AFTER_S = 600.0
"""A lock held from another host is stale when its heartbeat is older than this (ten heartbeats
missed would be a driver stopped far longer than any pause of a live one)."""

LOCAL_PROTOCOLS = ("", "file", "local")
"""fsspec protocols of file systems with an atomic exclusive create."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def process_start(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot, from ``/proc``), or "" where unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return fields[19]  # field 22 of stat(5); fields[0] is field 3
    except (OSError, IndexError):
        return ""


def process_alive(pid: int, started: str = "") -> bool:
    """Whether process ``pid`` runs on this host (and, when ``started`` is known, is the same process)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        pass
    except OSError:
        return False
    now = process_start(pid)
    return not (started and now and now != started)


@dataclass
class LockInfo:
    """What a lock file says about the run holding it.

    Attributes
    ----------
    owner, host : str
        User and host name of the holder.
    pid : int
        Its process id on ``host``.
    process_start : str
        The process's start time on ``host`` (``/proc``, clock ticks), "" where unknown.
    started : str
        ISO 8601 UTC time the lock was taken.
    heartbeat : str
        ISO 8601 UTC time the holder last rewrote it.
    run_id : str
        The holder's run id.
    command : str
        The holder's command line.
    """

    owner: str
    host: str
    pid: int
    process_start: str
    started: str
    heartbeat: str
    run_id: str
    command: str

    @classmethod
    def mine(cls, *, run_id: str) -> LockInfo:
        """The lock of this process."""
        now = _now()
        return cls(_user(), socket.gethostname(), os.getpid(), process_start(os.getpid()), now, now, run_id,
                   " ".join(sys.argv)[:500])

    def describe(self) -> str:
        """``run R of user@host, pid N, since T (last heartbeat H)``."""
        return (f"run {self.run_id} of {self.owner}@{self.host}, pid {self.pid}, since {self.started} "
                f"(last heartbeat {self.heartbeat})")

    def stale_reason(self, *, now_s: float | None = None) -> str:
        """Why this lock's run is certainly gone, or "" if it may still be running."""
        if self.host == socket.gethostname():
            if not process_alive(self.pid, self.process_start):
                return f"process {self.pid} no longer runs on {self.host}"
            return ""
        try:
            beat = datetime.fromisoformat(self.heartbeat).timestamp()
        except ValueError:
            return ""
        age = (time.time() if now_s is None else now_s) - beat
        if age > STALE_AFTER_S:
            return f"its heartbeat is {age / 60:.0f} minutes old (limit {STALE_AFTER_S / 60:.0f})"
        return ""


def lock_file(output: paths.PathLike) -> UPath:
    """``<output>/halo-survey.lock``."""
    return paths.as_upath(output) / LOCK_FILENAME


def read_lock(output: paths.PathLike) -> LockInfo | None:
    """The lock in ``output``, or None if there is none.

    Raises
    ------
    BadInputError
        A lock file exists but cannot be parsed (it is then treated as held).
    """
    path = lock_file(output)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return LockInfo(**json.loads(text))
    except (ValueError, TypeError) as exc:
        raise BadInputError(str(path), f"is not a halo-survey lock ({exc}); if no run uses this output, delete "
                            "the file and start again") from exc


def _is_local(path: UPath) -> bool:
    return getattr(path, "protocol", "") in LOCAL_PROTOCOLS


class OutputLock:
    """The exclusive lock of one output directory, taken by ``acquire`` and given back by ``release``.

    Parameters
    ----------
    output : str, Path or UPath
        The run's output directory (created if needed; it must be writable).
    run_id : str
        This run's id, written into the lock.

    Attributes
    ----------
    replaced : LockInfo or None
        A stale lock this one replaced (reported as a warning).
    """

    def __init__(self, output: paths.PathLike, *, run_id: str):
        self.output = output
        self.run_id = run_id
        self.path = lock_file(output)
        self.info = LockInfo.mine(run_id=run_id)
        self.replaced: LockInfo | None = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    # -- taking and giving back ------------------------------------------------------

    def acquire(self) -> OutputLock:
        """Take the lock, replacing a stale one; start the heartbeat.

        Raises
        ------
        BadInputError
            Another run holds the lock (naming it and what to do), or the output cannot be
            written.
        """
        check_writable(self.output)
        for _ in range(2):
            if self._create():
                self._start_heartbeat()
                return self
            held = read_lock(self.output)
            if held is None:  # given back between our two looks
                continue
            reason = held.stale_reason()
            if not reason:
                raise BadInputError(
                    str(self.output),
                    f"is in use by {held.describe()}; wait for that run to end (or stop it), or choose another "
                    f"--output. If that run is certainly dead, delete {self.path} and start again",
                )
            if self._remove_stale(held):
                self.replaced = held
                logger.warning("%s: replaced the stale lock of %s: %s", self.output, held.describe(), reason)
        raise BadInputError(str(self.output), f"could not take the lock {self.path}: another run keeps taking it")

    def _create(self) -> bool:
        """Write the lock if none exists; False if one does."""
        text = json.dumps(asdict(self.info), indent=1) + "\n"
        if _is_local(self.path):
            try:
                fd = os.open(self.path.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            return True
        if self.path.exists():  # object stores: check, then write (advisory; module docstring)
            return False
        self.path.write_text(text)
        return True

    def _remove_stale(self, held: LockInfo) -> bool:
        """Move the stale lock ``held`` aside and delete it; False if another run replaced it meanwhile."""
        aside = paths.temp_sibling(self.path, token=secrets.randbits(62))
        try:
            self.path.fs.mv(self.path.path, aside.path)
        except FileNotFoundError:
            return True  # someone else removed it: try again
        try:
            moved = LockInfo(**json.loads(aside.read_text()))
        except (ValueError, TypeError):
            moved = None
        if moved is not None and moved != held and not self.path.exists():
            self.path.fs.mv(aside.path, self.path.path)  # a fresh lock, not the stale one: put it back
            return False
        aside.unlink()
        return True

    def release(self) -> None:
        """Stop the heartbeat and delete the lock, if it is still ours."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)
        with contextlib.suppress(BadInputError, OSError):
            held = read_lock(self.output)
            if held is not None and held.run_id == self.info.run_id and held.pid == self.info.pid:
                self.path.unlink()

    # -- heartbeat ----------------------------------------------------------------------

    def _start_heartbeat(self) -> None:
        self._beat = threading.Thread(target=self._heartbeat, name="halo-survey-lock", daemon=True)
        self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            self.info.heartbeat = _now()
            temp = paths.temp_sibling(self.path, token=secrets.randbits(62))
            try:
                temp.write_text(json.dumps(asdict(self.info), indent=1) + "\n")
                temp.fs.mv(temp.path, self.path.path)
            except OSError as exc:  # a full disk must not kill the run; the lock only looks older
                logger.warning("could not refresh the lock %s: %s", self.path, exc)


_HELD: dict[str, tuple[OutputLock, int]] = {}
_HELD_GUARD = threading.Lock()


@contextlib.contextmanager
def output_lock(output: paths.PathLike, *, run_id: str) -> Iterator[OutputLock]:
    """Hold the lock of ``output`` for the ``with`` block; reentrant within this process.

    Parameters
    ----------
    output : str, Path or UPath
        The run's output directory.
    run_id : str
        This run's id, written into the lock.

    Yields
    ------
    OutputLock
        The lock held (the same object for nested blocks on one output).

    Raises
    ------
    BadInputError
        Another run holds the lock (in another process, or another run id in this one),
        or the output cannot be written.
    """
    key = str(paths.as_upath(output))
    with _HELD_GUARD:
        held = _HELD.get(key)
        if held is None:
            lock = OutputLock(output, run_id=run_id).acquire()
            _HELD[key] = (lock, 1)
        elif held[0].run_id != run_id:
            raise BadInputError(str(output), f"is in use by {held[0].info.describe()} in this process; wait for "
                                "that run to end, or choose another --output")
        else:
            lock = held[0]
            _HELD[key] = (lock, held[1] + 1)
    try:
        yield lock
    finally:
        with _HELD_GUARD:
            lock, count = _HELD[key]
            if count == 1:
                del _HELD[key]
                lock.release()
            else:
                _HELD[key] = (lock, count - 1)
