"""Output faults: unwritable destinations, and a second run on an output another run holds (the lock).

None of these needs Ray: the lock is taken before Ray starts, so a refused run costs no
cluster start-up and writes nothing.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from survey.exceptions import BadInputError
from survey.output import paths
from survey.output.schema import synthetic_table
from survey.output.store import CatalogWriter
from survey.run.lock import LOCK_FILENAME, LockInfo, OutputLock, output_lock, process_start, read_lock
from survey.run.manifest import RunManifest, write_manifest
from tests.survey.reliability.conftest import Snapshot, run_cli, scan_argv


@pytest.fixture
def finished(tmp_path) -> Path:
    """A run directory with a small finished candidate catalogue and its manifest."""
    run = tmp_path / "run"
    writer = CatalogWriter(paths.catalog_dir(run, kind="candidates"), order=5, provenance={"run_id": "t"})
    writer.write_tile(11583, synthetic_table(order=5, tile=11583, n_rows=3, seed=1))
    writer.finish()
    write_manifest(RunManifest(run_id="first", mode="scan", arguments={}, provenance={}, tiles_planned=1,
                               status="complete"), run)
    return run


@pytest.fixture
def sleeper():
    """A live process of this host that is not a halo-survey run."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield process
    process.kill()
    process.wait()


def _lock(directory: Path, **changes) -> LockInfo:
    info = LockInfo.mine(run_id="other-run")
    for key, value in changes.items():
        setattr(info, key, value)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / LOCK_FILENAME).write_text(json.dumps(info.__dict__))
    return info


def _old(minutes: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(minutes=minutes)).isoformat(timespec="seconds")


# -- query --out ------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["no such dir/best.csv", "a file/best.csv"])
def test_query_out_where_no_file_can_be_made_is_one_line(finished, tmp_path, where):
    (tmp_path / "a file").write_text("")
    snapshot = Snapshot(tmp_path)
    result = run_cli(["query", finished, "--format", "csv", "--out", tmp_path / where])
    assert result.rc == 2 and "Traceback" not in result.text
    assert result.err.startswith("halo-survey query: error:") and where in result.err
    snapshot.assert_unchanged()


def test_query_out_on_a_read_only_file_system_names_the_path(finished):
    result = run_cli(["query", finished, "--format", "csv", "--out", "/sys/halo-candidates.csv"])
    assert result.rc == 2 and "/sys/halo-candidates.csv" in result.err and "cannot be written" in result.err
    assert not Path("/sys/halo-candidates.csv").exists()


def test_query_out_onto_a_directory_is_refused(finished, tmp_path):
    result = run_cli(["query", finished, "--format", "csv", "--out", tmp_path])
    assert result.rc == 2 and "file exists" in result.err or "is a directory" in result.err


# -- run outputs ------------------------------------------------------------------------


def test_an_empty_output_is_one_line(model, tmp_path):
    snapshot = Snapshot(tmp_path)
    result = run_cli(scan_argv(model, ""))
    assert result.rc == 2 and "-o/--output: is empty" in result.err and "Traceback" not in result.text
    snapshot.assert_unchanged()


def test_an_output_that_is_a_file_is_refused(model, tmp_path):
    (tmp_path / "out").write_text("not a directory")
    result = run_cli(scan_argv(model, tmp_path / "out"))
    assert result.rc == 2 and "cannot write the catalogue here" in result.err
    assert (tmp_path / "out").read_text() == "not a directory"


# -- the lock ---------------------------------------------------------------------------


def test_a_resume_while_another_run_holds_the_output_is_refused_and_changes_nothing(model, tmp_path, sleeper):
    running = tmp_path / "running"
    write_manifest(RunManifest(run_id="other-run", mode="scan", arguments={}, provenance={}, tiles_planned=6), running)
    holder = _lock(running, pid=sleeper.pid, process_start=process_start(sleeper.pid))
    snapshot = Snapshot(running)
    result = run_cli(scan_argv(model, running, "--resume"))
    assert result.rc == 2
    assert f"is in use by run other-run of {holder.owner}@{socket.gethostname()}, pid {sleeper.pid}" in result.err
    assert str(running / LOCK_FILENAME) in result.err
    snapshot.assert_unchanged()  # the manifest untouched, the holder's lock kept


def test_an_overwrite_while_another_run_holds_the_output_deletes_nothing(model, finished, sleeper):
    _lock(finished, pid=sleeper.pid, process_start=process_start(sleeper.pid))
    snapshot = Snapshot(finished)
    assert run_cli(scan_argv(model, finished, "--overwrite")).rc == 2
    snapshot.assert_unchanged()


def test_a_lock_held_on_another_host_with_a_fresh_heartbeat_is_respected(tmp_path):
    _lock(tmp_path, host="node-7.cluster", heartbeat=_old(2))
    with pytest.raises(BadInputError, match=r"in use by run other-run of .*@node-7\.cluster"):
        OutputLock(tmp_path, run_id="me").acquire()


def test_a_lock_whose_process_died_is_replaced_with_a_warning(tmp_path, caplog):
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    _lock(tmp_path, pid=process.pid, process_start="1")
    with caplog.at_level(logging.WARNING, logger="survey.run.lock"):
        lock = OutputLock(tmp_path, run_id="me").acquire()
    try:
        assert lock.replaced is not None and lock.replaced.run_id == "other-run"
        assert f"process {process.pid} no longer runs" in caplog.text and "stale lock" in caplog.text
        assert read_lock(tmp_path).run_id == "me"
    finally:
        lock.release()
    assert not (tmp_path / LOCK_FILENAME).exists()


def test_a_lock_of_a_reused_pid_is_stale(tmp_path, sleeper):
    _lock(tmp_path, pid=sleeper.pid, process_start="1")  # the pid lives, but started at another time
    lock = OutputLock(tmp_path, run_id="me").acquire()
    lock.release()
    assert lock.replaced is not None


def test_a_lock_on_another_host_without_heartbeat_for_long_is_stale(tmp_path):
    _lock(tmp_path, host="node-7.cluster", heartbeat=_old(60))
    lock = OutputLock(tmp_path, run_id="me").acquire()
    lock.release()
    assert "heartbeat is 60 minutes old" in lock.replaced.stale_reason()


def test_a_lock_file_that_is_not_a_lock_is_named_not_deleted(tmp_path, model):
    (tmp_path / LOCK_FILENAME).write_text("{garbage")
    result = run_cli(scan_argv(model, tmp_path))
    assert result.rc == 2 and f"{tmp_path / LOCK_FILENAME}: is not a halo-survey lock" in result.err
    assert (tmp_path / LOCK_FILENAME).read_text() == "{garbage"


def test_two_runs_of_one_process_on_one_output_are_refused(tmp_path):
    with output_lock(tmp_path, run_id="first"):
        with output_lock(tmp_path, run_id="first"):  # the same run, again (CLI, then pipeline.run)
            pass
        with pytest.raises(BadInputError, match="in use by run first .* in this process"):
            with output_lock(tmp_path, run_id="second"):
                pass
        assert read_lock(tmp_path).run_id == "first"
    assert read_lock(tmp_path) is None


def test_the_lock_says_who_holds_it(tmp_path):
    with output_lock(tmp_path, run_id="r1"):
        held = read_lock(tmp_path)
    assert (held.pid, held.host, held.run_id) == (os.getpid(), socket.gethostname(), "r1")
    assert held.started and held.heartbeat and held.owner


@pytest.mark.parametrize("text", ["{\"run_id\": \"first\"}", "{not json", ""])
def test_a_damaged_manifest_is_named_when_resuming(model, finished, text):
    (finished / "manifest.json").write_text(text)
    result = run_cli(scan_argv(model, finished, "--resume"))
    assert result.rc == 2 and "manifest.json: is not a halo-survey run manifest" in result.err
    assert "Traceback" not in result.text
