"""Build and run the project's images with podman, for the ``containers`` tests.

The images are built by ``containers/build.sh`` (the same script a person runs), so what the
tests run is what the README tells users to build. On this project's CI machine (no Docker
engine, no registry) ``.ci/run`` first runs ``containers/ci/podman-host.sh``, which installs
podman, writes its containers.conf and imports a local Debian base, and exports the variables
``build.sh`` reads (``BASE_IMAGE``, ``PULL``, ``HOST_CA``, ``CONTAINERS_CONF``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "containers" / "build.sh"
TAG = os.environ.get("TAG", "localhost/halo-survey")
FLAVOURS = ("cpu", "gpu", "train")
IMAGE_UID = 1000
"""The images' non-root user (``USER 1000:1000``)."""


class PodmanError(RuntimeError):
    """A podman command failed; the message holds its command line and the end of its output."""


def podman_missing_reason() -> str | None:
    """Why podman cannot run containers here, or None when it can."""
    if shutil.which("podman") is None:
        return "podman is not installed (CI installs it: containers/ci/podman-host.sh)"
    done = subprocess.run(["podman", "info", "--format", "{{.Host.OCIRuntime.Name}}"], capture_output=True, text=True)
    if done.returncode != 0:
        return f"podman cannot start: {done.stderr.strip()[-300:]}"
    return None


def podman(*args: str, check: bool = True, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    """Run ``podman ARGS``, capturing text output; raise :class:`PodmanError` if ``check`` and it fails."""
    done = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and done.returncode != 0:
        raise PodmanError(f"podman {' '.join(args)} exited {done.returncode}:\n{(done.stdout + done.stderr)[-3000:]}")
    return done


def build_image(flavour: str) -> tuple[str, float]:
    """Build ``TAG:flavour`` with containers/build.sh; return the image and the build's seconds."""
    if flavour not in FLAVOURS:
        raise ValueError(f"flavour must be one of {FLAVOURS}, got {flavour!r}")
    started = time.monotonic()
    done = subprocess.run(["bash", str(BUILD_SCRIPT), flavour], capture_output=True, text=True, cwd=ROOT, timeout=1800)
    if done.returncode != 0:
        raise PodmanError(f"containers/build.sh {flavour} exited {done.returncode}:\n{(done.stdout + done.stderr)[-4000:]}")
    return f"{TAG}:{flavour}", time.monotonic() - started


def inspect_image(image: str) -> dict:
    """``podman image inspect`` of one image."""
    return json.loads(podman("image", "inspect", image).stdout)[0]


def run(image: str, *args: str, options: Sequence[str] = (), check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
    """``podman run --rm`` of ``image`` with ``args``; no health-check timer (podman would ask systemd for one)."""
    return podman("run", "--rm", "--no-healthcheck", *options, image, *args, check=check, timeout=timeout)


def container_ip(name: str, network: str) -> str:
    """The address of container ``name`` on ``network``."""
    return podman("inspect", "--format", f"{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}", name).stdout.strip()


def writable_dir(path: Path) -> Path:
    """Make ``path`` (a bind mount) writable for the images' user, uid 1000, whoever runs the tests."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)
    return path
