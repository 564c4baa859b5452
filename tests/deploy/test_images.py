"""The container images, built with podman and run: what a user of ``docker run`` gets.

CI has no GPU, so the GPU image is built and inspected (its ONNX Runtime lists the CUDA
provider, and every library that provider links is in the image but the driver's libcuda),
not run on a GPU. See containers/README.md for what this does not verify.
"""

from __future__ import annotations

import json
import subprocess
import tomllib

import hats
import lsdb
from hats.io.validation import is_valid_catalog
import pyarrow.parquet as pq
import pytest

from tests.deploy import podman
from tests.deploy.conftest import DEMO_REGION

pytestmark = [pytest.mark.containers, pytest.mark.slow]

PROJECT_VERSION = tomllib.loads((podman.ROOT / "pyproject.toml").read_text())["project"]["version"]


def _python(image: str, code: str, *, check: bool = True) -> subprocess.CompletedProcess:
    """Python code run in ``image`` (the training image's entrypoint is halo-train, so name python)."""
    return podman.run(image, "-c", code, options=["--network", "none", "--entrypoint", "python"], check=check)


# --------------------------------------------------------------------------------------
# the CPU image runs the demo scan
# --------------------------------------------------------------------------------------


def test_cpu_image_runs_the_demo_scan_without_network_and_writes_a_readable_catalogue(demo_scan):
    out, done = demo_scan
    assert done.returncode == 0, done.stdout + done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["provenance"]["region"] == DEMO_REGION
    assert manifest["tiles_planned"] == manifest["tiles_done"] == 18 and not manifest["failed"]
    catalog = hats.read_hats(out / "candidates")
    assert catalog.catalog_info.total_rows == manifest["candidates"] > 0
    assert is_valid_catalog(out / "candidates", strict=True)
    frame = lsdb.open_catalog(out / "candidates", search_filter=lsdb.ConeSearch(339.6, -39.6, 3 * 3600)).compute()
    assert len(frame) == manifest["candidates"]
    assert pq.read_table(out / "candidates" / "dataset").num_rows == manifest["candidates"]


def test_cpu_image_demo_scan_reports_the_mock_sky_and_its_recovered_halos(demo_scan):
    _, done = demo_scan
    assert "MOCK DATA" in done.stdout and f"region        {DEMO_REGION}" in done.stdout
    assert "3 of 3 injected halos recovered" in done.stdout


def test_cpu_image_writes_its_output_as_the_non_root_user(demo_scan):
    out, _ = demo_scan
    assert (out / "manifest.json").stat().st_uid == podman.IMAGE_UID


# --------------------------------------------------------------------------------------
# what is inside each image
# --------------------------------------------------------------------------------------


def _providers_and_installed(image: str, names: tuple[str, ...]) -> tuple[list[str], set[str]]:
    """ONNX Runtime's available providers in ``image``, and which of the distributions ``names`` it has."""
    code = ("import importlib.metadata as m, json, onnxruntime as o; "
            "print(json.dumps([o.get_available_providers(), sorted(x.metadata['Name'].lower() for x in m.distributions())]))")
    providers, installed = json.loads(_python(image, code).stdout.strip().splitlines()[-1])
    return providers, set(names) & set(installed)


def test_cpu_image_has_the_cpu_onnxruntime_and_no_tensorflow(cpu_image):
    providers, unwanted = _providers_and_installed(cpu_image, ("tensorflow", "tensorflow-cpu", "onnxruntime-gpu", "keras"))
    assert "CPUExecutionProvider" in providers and not any("CUDA" in p for p in providers) and not unwanted


def test_gpu_image_lists_the_cuda_provider_and_has_no_cpu_onnxruntime_or_tensorflow(gpu_image):
    providers, unwanted = _providers_and_installed(gpu_image, ("tensorflow", "tensorflow-cpu", "onnxruntime", "keras"))
    assert "CUDAExecutionProvider" in providers and not unwanted


def test_gpu_image_loads_the_cuda_provider_up_to_the_drivers_libcuda(gpu_image):
    """A session asking for CUDA, in the image's own environment, on a host without a GPU.

    Every library the CUDA provider links must load from the NVIDIA wheels in the image, so
    that the only one missing is libcuda.so.1, which the host's driver provides (the NVIDIA
    Container Toolkit mounts it). Without the image's LD_LIBRARY_PATH the provider fails on
    libcublasLt.so.13 instead, and a scan on a GPU host silently runs on the CPU.
    """
    code = (
        "import glob, json, os, subprocess, onnxruntime as o\n"
        "lib = glob.glob(os.path.join(os.path.dirname(o.__file__), 'capi', 'libonnxruntime_providers_cuda.so'))[0]\n"
        "out = subprocess.run(['ldd', lib], capture_output=True, text=True).stdout\n"
        "print(json.dumps([line.split()[0] for line in out.splitlines() if 'not found' in line]))\n"
        "print(json.dumps(sorted({line.split()[0].split('.so')[0] for line in out.splitlines() if '/nvidia/' in line})))\n"
        "o.InferenceSession('/opt/halo-survey/models/halo-classifier.onnx', providers=['CUDAExecutionProvider'])\n"
    )
    done = _python(gpu_image, code, check=False)
    missing, from_wheels = (json.loads(line) for line in done.stdout.strip().splitlines()[-2:])
    assert missing == ["libcuda.so.1"], missing
    assert {"libcublas", "libcublasLt", "libcudart", "libcurand"} <= set(from_wheels), from_wheels
    assert "libonnxruntime_providers_cuda.so with error: libcuda.so.1: cannot open" in done.stderr, done.stderr[-2000:]


def test_training_image_has_tensorflow_and_runs_halo_train(train_image):
    done = podman.run(train_image, "--help", options=["--network", "none"])
    assert "halo-train" in done.stdout
    version = _python(train_image, "import tensorflow as tf, training, onnxruntime; print(tf.__version__)").stdout.split()[-1]
    assert version == _pinned("tensorflow_cpu")


def _pinned(name: str) -> str:
    for line in (podman.ROOT / "constraints.txt").read_text().splitlines():
        if line.lower().startswith(f"{name.lower()}=="):
            return line.split("==", 1)[1]
    raise AssertionError(f"{name} is not pinned in constraints.txt")


@pytest.mark.parametrize("flavour", ["cpu", "gpu"])
def test_image_ships_the_model_and_only_the_runtime_sources(flavour, request):
    image = request.getfixturevalue(f"{flavour}_image")
    listing = podman.run(image, "sh", "-c", "ls -A /opt/halo-survey; ls /opt/halo-survey/models",
                         options=["--network", "none"]).stdout.split()
    assert {"halo-classifier.onnx", "halo-classifier.card.json", "survey", "pyproject.toml"} <= set(listing)
    assert not {".venv", "tests", "results", "bench", "halo-survey-out", ".git", "training"} & set(listing)


# --------------------------------------------------------------------------------------
# user, entrypoint, labels, health check
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", ["cpu", "gpu", "train"])
def test_image_runs_as_uid_1000_with_labels_and_a_health_check(flavour, request):
    image = request.getfixturevalue(f"{flavour}_image")
    inspected = podman.inspect_image(image)
    config = inspected["Config"]
    assert config["User"] == "1000:1000"
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == PROJECT_VERSION
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=podman.ROOT).stdout.strip()
    assert labels["org.opencontainers.image.revision"] == (head or "unknown")
    assert labels["org.opencontainers.image.title"].startswith("halo-survey")
    assert labels["org.opencontainers.image.licenses"] == "BSD-3-Clause"
    command = "halo-train" if flavour == "train" else "halo-survey"
    assert inspected["Healthcheck"]["Test"][:2] == ["CMD", command]
    assert config["Entrypoint"] == (["halo-train"] if flavour == "train" else ["halo-entrypoint"])


def test_cpu_image_health_check_passes_in_a_running_container(cpu_image):
    """``halo-survey --version``, run by podman's own health-check machinery in a live container."""
    name = "halo-health-check"
    podman.podman("rm", "--force", "--ignore", name)
    podman.podman("run", "--detach", "--name", name, "--network", "none", cpu_image, "sleep", "120")
    try:
        done = podman.podman("healthcheck", "run", name, check=False)
        version = podman.podman("exec", name, "halo-survey", "--version", check=False)
    finally:
        podman.podman("rm", "--force", "--time", "0", name)
    assert version.returncode == 0 and PROJECT_VERSION in version.stdout, version.stdout + version.stderr
    assert done.returncode == 0, done.stdout + done.stderr


def test_entrypoint_sends_subcommands_to_halo_survey_and_runs_other_commands(cpu_image):
    assert "usage: halo-survey" in podman.run(cpu_image, options=["--network", "none"]).stdout
    assert "usage: halo-survey tiles" in podman.run(cpu_image, "tiles", "--help", options=["--network", "none"]).stdout
    assert podman.run(cpu_image, "ray", "--version", options=["--network", "none"]).stdout.split()[-1] == _pinned("ray")
