"""Signals and concurrent runs: Ctrl-C, SIGTERM and kill -9 of a scan, and a second run on its output.

Three drivers in turn scan one output, each a ``halo-survey`` process joining the corpus's
Ray (``--address``), as on a shared cluster: the first is stopped with SIGTERM while a
second run tries to ``--resume`` beside it, the second (a resume) with Ctrl-C, the third
with ``kill -9``, and a last resume in this process completes the catalogue. Every step
keeps what was finished and writes nothing outside the output directory.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from survey.run.lock import LOCK_FILENAME, read_lock
from survey.sky.tiling import parse_region, plan
from tests.survey.reliability.conftest import Snapshot, done_tiles, manifest_of, ray_address, run_cli

pytestmark = [pytest.mark.ray, pytest.mark.slow]

REGION = "cone:339.6,-39.6,3"
WINDOW_ORDER = 9
TILES = len(plan(parse_region(REGION), tile_order=5, window_order=WINDOW_ORDER).tiles)
"""17 order-5 tiles of the mock sky hold windows of order 9."""
REPO = Path(__file__).resolve().parents[3]


def _argv(model: Path, output: Path, *extra) -> list[str]:
    return ["scan", "--model", str(model), "-o", str(output), "--region", REGION, "--window-order", str(WINDOW_ORDER),
            "--no-progress", "--match-catalogs", "", *extra]


@dataclass
class Stopped:
    rc: int
    err: str
    done_at_signal: int
    done_after: set[int]
    manifest: dict
    locked_after: bool


class _Records(logging.Handler):
    """The warnings the CLI prints to stderr (under pytest its log records go to pytest instead)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _start(address: str, argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "survey.cli", *argv, "--address", address], cwd=REPO,
                            env={**os.environ, "RAY_AUTH_MODE": "disabled"}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for_tiles(process: subprocess.Popen, output: Path, more_than: int, *, seconds: float = 150) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done = len(done_tiles(output))
        if done > more_than:
            return done
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError(f"no tile finished within {seconds} s")


def _stop(process: subprocess.Popen, output: Path, signum: int, before: int) -> Stopped:
    at_signal = _wait_for_tiles(process, output, before)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    return Stopped(process.returncode, err, at_signal, done_tiles(output), manifest_of(output),
                   (output / LOCK_FILENAME).exists())


@pytest.fixture(scope="module")
def story(ray_shared, model, tmp_path_factory):
    root = tmp_path_factory.mktemp("signals")
    output = root / "out"
    snapshot = Snapshot(root, inside=output)
    address = ray_address(ray_shared)
    steps = {}

    first = _start(address, _argv(model, output))
    _wait_for_tiles(first, output, 0)
    steps["concurrent"] = (run_cli(_argv(model, output, "--resume")), read_lock(output), first.pid)
    steps["sigterm"] = _stop(first, output, signal.SIGTERM, 0)

    second = _start(address, _argv(model, output, "--resume"))
    steps["sigint"] = _stop(second, output, signal.SIGINT, len(steps["sigterm"].done_after))

    third = _start(address, _argv(model, output, "--resume"))
    _wait_for_tiles(third, output, len(steps["sigint"].done_after))
    third.kill()
    third.communicate(timeout=60)
    steps["killed"] = (done_tiles(output), read_lock(output), third.pid)

    records = _Records()
    logging.getLogger("survey.run.lock").addHandler(records)
    try:
        steps["resumed"] = run_cli(_argv(model, output, "--resume"))
    finally:
        logging.getLogger("survey.run.lock").removeHandler(records)
    steps["warnings"] = records.text
    snapshot.assert_unchanged()
    return output, steps


def test_a_second_run_beside_a_running_one_is_refused(story):
    _, steps = story
    result, lock, pid = steps["concurrent"]
    assert lock is not None and lock.pid == pid
    assert result.rc == 2 and f"pid {pid}" in result.err and "is in use by run" in result.err


@pytest.mark.parametrize(("step", "signum"), [("sigterm", signal.SIGTERM), ("sigint", signal.SIGINT)])
def test_a_signal_ends_the_run_with_one_line_and_its_exit_code(story, step, signum):
    output, steps = story
    stopped = steps[step]
    assert stopped.rc == 128 + signum
    last = stopped.err.strip().splitlines()[-1]
    done = stopped.manifest["tiles_done_before"] + stopped.manifest["tiles_done"]
    assert last == (f"halo-survey scan: interrupted after {done} of {TILES} tiles; rerun with --resume "
                    f"(finished tiles are kept in {output})")
    assert "Traceback" not in stopped.err


@pytest.mark.parametrize("step", ["sigterm", "sigint"])
def test_a_signal_keeps_every_finished_tile_and_gives_the_lock_back(story, step):
    _, steps = story
    stopped = steps[step]
    assert stopped.manifest["status"] == "interrupted"
    assert len(stopped.done_after) >= stopped.done_at_signal >= 1
    assert stopped.manifest["tiles_done_before"] + stopped.manifest["tiles_done"] == len(stopped.done_after)
    assert not stopped.locked_after


def test_the_resume_after_ctrl_c_skipped_what_sigterm_had_finished(story):
    _, steps = story
    assert steps["sigint"].manifest["tiles_done_before"] == len(steps["sigterm"].done_after)


def test_a_killed_run_leaves_a_stale_lock_that_the_next_run_replaces(story):
    output, steps = story
    done, lock, pid = steps["killed"]
    assert lock is not None and lock.pid == pid
    resumed = steps["resumed"]
    assert resumed.rc == 0, resumed.text
    assert f"replaced the stale lock of run {lock.run_id}" in steps["warnings"]
    assert f"process {pid} no longer runs" in steps["warnings"]
    assert read_lock(output) is None


def test_the_last_resume_completes_the_catalogue_without_redoing_finished_tiles(story):
    output, steps = story
    manifest = manifest_of(output)
    done_before_kill, _, _ = steps["killed"]
    assert manifest["status"] == "complete" and len(manifest["run_ids"]) == 4
    assert manifest["tiles_done_before"] >= len(done_before_kill)
    assert manifest["tiles_done_before"] + manifest["tiles_done"] == TILES
    assert (output / "candidates" / "hats.properties").exists()
