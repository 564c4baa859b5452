"""Fixtures of the container tests: podman, the three images, and the demo scan in the CPU image.

Without podman the ``containers`` tests skip and say why, except under ``CI=true``, where a
missing podman is a failure: CI must not pass by building nothing.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.deploy import podman

DEMO_REGION = "cone:339.6,-39.6,3"
"""The demo scan's region (18 order-5 tiles of the mock sky), as in ``halo-survey scan --help``."""


def require_podman(reason: str | None, *, ci: bool) -> None:
    """Skip with ``reason`` when podman cannot run containers; under CI, fail instead."""
    if reason is not None:
        if ci:
            pytest.fail(f"{reason}; under CI=true the container tests must run")
        pytest.skip(reason)


@pytest.fixture(scope="session")
def podman_ready() -> None:
    """podman can run containers here; skip (fail under CI=true) otherwise."""
    require_podman(podman.podman_missing_reason(), ci=os.environ.get("CI", "").lower() == "true")


@pytest.fixture(scope="session")
def cpu_image(podman_ready) -> str:
    """The CPU survey image, built from this checkout."""
    return podman.build_image("cpu")[0]


@pytest.fixture(scope="session")
def gpu_image(podman_ready) -> str:
    """The GPU survey image, built from this checkout (CI has no GPU: it is inspected, not run on one)."""
    return podman.build_image("gpu")[0]


@pytest.fixture(scope="session")
def train_image(podman_ready) -> str:
    """The training image (Dockerfile.cpu, target training)."""
    return podman.build_image("train")[0]


def local_scan(image: str, region: str, out: Path, name: str) -> tuple[Path, subprocess.CompletedProcess]:
    """``halo-survey scan`` of ``region`` in one container of ``image`` (its own local Ray), no network.

    Returns the run directory on the host (``out/name``) and the finished process.
    """
    podman.writable_dir(out)
    done = podman.run(
        image, "scan", "--region", region, "--output", f"/work/out/{name}", "--no-progress",
        options=["--network", "none", "--shm-size", "1g", "-v", f"{out}:/work/out"], check=False,
    )
    return out / name, done


@pytest.fixture(scope="session")
def demo_scan(cpu_image, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The demo scan run in the CPU image with no network: ``(output directory, finished process)``.

    It is also the local (one-process Ray) run that the Ray-cluster tests compare with.
    """
    return local_scan(cpu_image, DEMO_REGION, tmp_path_factory.mktemp("demo-scan") / "out", "demo")
