"""The container and deployment files, read without building or deploying anything.

What can rot silently is checked here, in seconds: every ``halo-survey`` command written in
the files and READMEs (and each Kubernetes container's ``args``) is accepted by the real
argument parser, and each Dockerfile installs exactly one ONNX Runtime from the pinned
constraints, no TensorFlow in the survey images, and ships the model. The schemas of the
deployment files are checked in ``test_validate.py``; the images are built and run in
``test_images.py`` and ``test_ray_cluster.py`` (marker ``containers``).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from survey.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
CONTAINERS = ROOT / "containers"
DEPLOY = ROOT / "deploy"
DOCKERFILES = {"cpu": CONTAINERS / "Dockerfile.cpu", "gpu": CONTAINERS / "Dockerfile.gpu"}
YAML_FILES = sorted(DEPLOY.rglob("*.yaml"))
USER_DOCS = [ROOT / "README.md", ROOT / "docs" / "survey.md", ROOT / "docs" / "deploy.md", ROOT / "BENCHMARKS.md"]
TEXT_FILES = [*YAML_FILES, *DOCKERFILES.values(), CONTAINERS / "README.md", DEPLOY / "README.md", *USER_DOCS]

SUBCOMMANDS = ("scan", "targets", "tiles", "query", "plot", "catalog", "inspect")
# `halo-survey SUB ...` or an image `halo-survey:TAG SUB ...`, up to a quote or the line end.
COMMAND = re.compile(r"halo-survey(?::[\w.-]+)? (?:" + "|".join(SUBCOMMANDS) + r")\b[^\"`\n]*")
# onnxruntime-gpu 1.31.1 (PyPI) is built for CUDA 13.0 + cuDNN 9 (its build_and_package_info.py).
ORT_GPU_PIN, ORT_GPU_CUDA_MAJOR = "onnxruntime-gpu==1.31.1", "13"


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _pinned_version(name: str) -> str:
    """Version of ``name`` in constraints.txt (the images install under it)."""
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.lower().startswith(f"{name}=="):
            return line.split("==", 1)[1].strip()
    raise AssertionError(f"{name} is not pinned in constraints.txt")


def _parse(command: str):
    """Arguments of ``halo-survey ...`` parsed by the CLI's own parser; fails on a bad option."""
    words = shlex.split(command)
    assert words[0] == "halo-survey", command
    try:
        return build_parser().parse_args(words[1:])
    except SystemExit as exc:  # argparse reports an unknown option or a bad value this way
        pytest.fail(f"halo-survey rejects {command!r} (exit {exc.code})")


def _container_commands(path: Path) -> list[str]:
    """``halo-survey ARGS`` of every Kubernetes container of the halo-survey images that has ``args``."""
    commands = []
    for document in yaml.safe_load_all(path.read_text()):
        for container in _all_containers(document):
            if "halo-survey:" in container.get("image", "") and container.get("args"):
                commands.append(shlex.join(["halo-survey", *map(str, container["args"])]))
    return commands


def _all_containers(node: object) -> list[dict]:
    """Every ``containers`` entry anywhere in a manifest."""
    if isinstance(node, dict):
        found = list(node.get("containers", [])) if isinstance(node.get("containers"), list) else []
        return found + [c for key, value in node.items() if key != "containers" for c in _all_containers(value)]
    if isinstance(node, list):
        return [c for item in node for c in _all_containers(item)]
    return []


def _commands(text: str) -> list[str]:
    """Every halo-survey command written in ``text``: continuations joined, image tags dropped."""
    joined = re.sub(r"\s*\\\n[\s#]*", " ", text)
    commands = [re.sub(r"^halo-survey:[\w.-]+", "halo-survey", m.group(0)).strip() for m in COMMAND.finditer(joined)]
    return [c.split(" # ")[0].strip() for c in commands if "..." not in c]


# --------------------------------------------------------------------------------------
# commands written in the files
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", TEXT_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_written_command_is_accepted_by_the_parser(path):
    commands = _commands(path.read_text()) + (_container_commands(path) if path.suffix == ".yaml" else [])
    for command in commands:
        _parse(command)
    if path.suffix == ".yaml" or path.name == "README.md" or path.name in ("survey.md", "deploy.md"):
        assert commands, f"{path} shows no halo-survey command"


def test_command_extraction_sees_a_bad_option():
    (command,) = _commands("docker run img halo-survey:cpu scan \\\n    --no-such-option 3\n")
    assert command == "halo-survey scan --no-such-option 3"
    with pytest.raises(pytest.fail.Exception, match="rejects"):
        _parse(command)


def test_rayjob_entrypoint_scans_the_gleam_footprint_into_s3_resumably():
    job = _load(DEPLOY / "k8s" / "survey-job.yaml")
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    args = _parse(job["spec"]["entrypoint"])
    assert args.command == "scan"
    assert (args.region, args.source, args.address, args.num_gpus) == ("gleam", "skyview", "auto", 1)
    assert args.output.startswith("s3://") and args.resume and not args.overwrite
    assert job["spec"]["shutdownAfterJobFinishes"] is True


def test_gpu_job_scans_the_footprint_on_one_gpu_into_s3_resumably():
    job = _load(DEPLOY / "k8s" / "gpu-job.yaml")
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    args = _parse(shlex.join(["halo-survey", *container["args"]]))
    assert (args.command, args.region, args.address, args.num_gpus, args.providers) == ("scan", "gleam", None, 1, "cuda")
    assert args.output.startswith("s3://") and args.resume and not args.overwrite
    assert container["image"].endswith(":gpu") and container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] >= 1


# --------------------------------------------------------------------------------------
# Kubernetes (KubeRay) manifests
# --------------------------------------------------------------------------------------


def _cluster_specs() -> dict[str, dict]:
    cluster = _load(DEPLOY / "k8s" / "raycluster.yaml")
    job = _load(DEPLOY / "k8s" / "survey-job.yaml")
    assert (cluster["apiVersion"], cluster["kind"]) == ("ray.io/v1", "RayCluster")
    return {"raycluster": cluster["spec"], "rayjob": job["spec"]["rayClusterSpec"]}


def _containers(group: dict) -> list[dict]:
    return group["template"]["spec"]["containers"]


@pytest.mark.parametrize("name", ["raycluster", "rayjob"])
def test_kuberay_cluster_has_cpu_and_gpu_worker_groups(name):
    spec = _cluster_specs()[name]
    assert spec["rayVersion"] == _pinned_version("ray")
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
    gpu = [g for g in groups.values() if "nvidia.com/gpu" in _containers(g)[0]["resources"]["limits"]]
    cpu = [g for g in groups.values() if g not in gpu]
    assert len(gpu) == 1 and cpu, f"{name}: want one GPU group and CPU groups, got {sorted(groups)}"
    assert all(c["image"].endswith(":gpu") for c in _containers(gpu[0]))
    assert all(c["image"].endswith(":cpu") for g in [spec["headGroupSpec"], *cpu] for c in _containers(g))


@pytest.mark.parametrize("name", ["raycluster", "rayjob"])
def test_kuberay_containers_request_what_they_limit_and_run_without_auth(name):
    spec = _cluster_specs()[name]
    for group in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]:
        for container in _containers(group):
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]) and set(resources["requests"]) == set(resources["limits"])
            if "nvidia.com/gpu" in resources["limits"]:  # extended resources: request must equal limit
                assert resources["requests"]["nvidia.com/gpu"] == resources["limits"]["nvidia.com/gpu"] >= 1
            env = {e["name"]: e.get("value") for e in container["env"]}
            assert env["RAY_AUTH_MODE"] == "disabled" and env["HALO_CACHE_DIR"] == "/cache"


# --------------------------------------------------------------------------------------
# Ray cluster launcher
# --------------------------------------------------------------------------------------


def test_ray_cluster_launcher_config_has_head_cpu_and_gpu_workers():
    config = _load(DEPLOY / "ray-cluster.yaml")
    types = config["available_node_types"]
    assert config["provider"]["type"] == "aws" and config["head_node_type"] in types
    assert types[config["head_node_type"]]["resources"] == {"CPU": 0}
    gpu = [name for name, t in types.items() if t.get("docker", {}).get("worker_image", "").endswith(":gpu")]
    assert len(gpu) == 1 and "--gpus all" in types[gpu[0]]["docker"]["worker_run_options"]
    assert config["docker"]["image"].endswith(":cpu") and len(types) == 3
    assert any("ray start --head" in c for c in config["head_start_ray_commands"])
    assert any("--address=$RAY_HEAD_IP:6379" in c for c in config["worker_start_ray_commands"])


def test_ray_cluster_launcher_shows_the_scan_joining_the_cluster():
    commands = _commands((DEPLOY / "ray-cluster.yaml").read_text())
    scans = [_parse(c) for c in commands if _parse(c).command == "scan"]
    assert scans and all(args.address == "auto" for args in scans)


# --------------------------------------------------------------------------------------
# Dockerfiles and the entrypoint
# --------------------------------------------------------------------------------------


def _instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuations joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "") for line in lines]


def _stages(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Instructions of each build stage by its name (``FROM ... AS name``; unnamed: ``stage<N>``)."""
    stages: dict[str, list[tuple[str, str]]] = {}
    for op, args in _instructions(path):
        if op == "FROM":
            words = args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else f"stage{len(stages)}"
            stages[name] = []
        if stages:
            stages[list(stages)[-1]].append((op, args))
    return stages


def _pip_installs(instructions: list[tuple[str, str]]) -> list[str]:
    """The arguments of each ``pip install`` in RUN instructions."""
    runs = " ".join(args for op, args in instructions if op == "RUN")
    return re.findall(r"pip install ([^&]*)", runs)


def _extras(install: str) -> set[str]:
    """Extras of the project (``'.[a,b]'`` or ``'.[a,b]'`` after ``-e``) in one pip install."""
    match = re.search(r"'\.\[([\w,-]+)\]'", install)
    return set(match.group(1).split(",")) if match else set()


# The stage that installs the survey runtime in each Dockerfile.
SURVEY_STAGE = {"cpu": "runtime", "gpu": "stage0"}
# Besides the project, each image installs only these requirements (constraints pin them).
EXTRA_REQUIREMENTS = {"cpu": {"'ray[default]'"}, "gpu": {"'ray[default]'", "'onnxruntime-gpu[cuda,cudnn]'"}}


@pytest.mark.parametrize("flavour", ["cpu", "gpu"])
def test_survey_image_installs_exactly_one_onnxruntime_from_the_constraints_and_no_tensorflow(flavour):
    stage = _stages(DOCKERFILES[flavour])[SURVEY_STAGE[flavour]]
    installs = _pip_installs(stage)
    assert installs and all("-c constraints.txt" in args for args in installs)
    known = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    with_extras = [args for args in installs if _extras(args)]
    assert [_extras(args) for args in with_extras] == [{flavour, "cloud"}] and {flavour, "cloud"} <= known
    requirements = {word for word in with_extras[0].split() if word.startswith("'") and not word.startswith("'.[")}
    assert requirements == EXTRA_REQUIREMENTS[flavour]
    assert not any(re.search(r"tensorflow|\btrain\b|\btf-", args) for args in installs)
    assert all("--no-deps" in args for args in installs if not _extras(args))  # the project itself, editable


@pytest.mark.parametrize("flavour", ["cpu", "gpu"])
def test_dockerfile_copies_only_existing_sources_and_ships_the_model(flavour):
    copies = [args.split() for op, args in _instructions(DOCKERFILES[flavour]) if op == "COPY"]
    assert ["models/", "models/"] in copies and ["pyproject.toml", "constraints.txt", "./"] == copies[0]
    assert all(ROOT.joinpath(src).exists() for args in copies for src in args[:-1])


def test_cpu_dockerfile_default_target_is_the_survey_runtime_and_training_adds_tensorflow():
    stages = _stages(DOCKERFILES["cpu"])
    assert list(stages) == ["runtime", "training", "survey"]  # the last stage is the default target
    assert stages["survey"][0] == ("FROM", "runtime AS survey") and stages["training"][0] == ("FROM", "runtime AS training")
    training = _pip_installs(stages["training"])
    assert {"cpu", "train", "tf-cpu"} <= _extras(training[0]) and all("-c constraints.txt" in args for args in training)
    assert ("COPY", "training/ training/") in stages["training"]
    assert ("ENTRYPOINT", '["halo-train"]') in stages["training"]


@pytest.mark.parametrize("flavour", ["cpu", "gpu"])
def test_dockerfile_runs_as_uid_1000_with_cache_volume_labels_and_a_version_health_check(flavour):
    ops = _stages(DOCKERFILES[flavour])[SURVEY_STAGE[flavour]]
    env = " ".join(args for op, args in ops if op == "ENV")
    assert "RAY_AUTH_MODE=disabled" in env and "HALO_CACHE_DIR=/cache" in env and "VIRTUAL_ENV=/opt/venv" in env
    assert ("VOLUME", '["/cache"]') in ops and ("ENTRYPOINT", '["halo-entrypoint"]') in ops
    assert [args for op, args in ops if op == "USER"][-1] == "1000:1000"
    (healthcheck,) = [args for op, args in ops if op == "HEALTHCHECK"]
    assert healthcheck.endswith('CMD ["halo-survey", "--version"]')
    labels = " ".join(args for op, args in _instructions(DOCKERFILES[flavour]) if op == "LABEL")
    for key in ("title", "description", "version", "revision", "created", "licenses", "base.name"):
        assert f"org.opencontainers.image.{key}=" in labels


@pytest.mark.parametrize("flavour", ["cpu", "gpu"])
def test_dockerfile_takes_its_base_as_an_argument_and_needs_no_python_in_it(flavour):
    text = DOCKERFILES[flavour].read_text()
    assert "ARG BASE_IMAGE=debian:bookworm-slim" in text  # Debian bookworm's python3 is 3.11
    assert _instructions(DOCKERFILES[flavour])[1][1].startswith("${BASE_IMAGE}")
    runs = " ".join(args for op, args in _instructions(DOCKERFILES[flavour]) if op in ("RUN", "ENV", "ENTRYPOINT"))
    assert "python3 -m venv /opt/venv" in runs and "/usr/local/bin/python" not in runs


def test_gpu_image_gets_cuda_13_and_cudnn_9_from_the_pinned_nvidia_wheels():
    """Fails when the onnxruntime-gpu pin moves: check its CUDA/cuDNN majors (containers/README.md)."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["optional-dependencies"]["gpu"] == [ORT_GPU_PIN]
    assert _pinned_version("onnxruntime-gpu") == ORT_GPU_PIN.split("==")[1]
    assert _pinned_version("nvidia-cuda-runtime").startswith(f"{ORT_GPU_CUDA_MAJOR}.")
    assert _pinned_version("nvidia-cublas").startswith(f"{ORT_GPU_CUDA_MAJOR}.")
    assert _pinned_version("nvidia-cudnn-cu13").startswith("9.")
    ld_path = re.search(r"LD_LIBRARY_PATH=(\S+)", DOCKERFILES["gpu"].read_text()).group(1).split(":")
    assert ld_path == [f"/opt/venv/lib/python3.11/site-packages/nvidia/{d}/lib" for d in ("cu13", "cudnn")]


def test_dockerignore_admits_only_what_the_dockerfiles_copy():
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    patterns = [line for line in lines if line and not line.startswith("#")]
    assert patterns[0] == "*", "an allowlist: everything is ignored unless admitted"
    admitted = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    copied = {src.rstrip("/") for path in DOCKERFILES.values() for op, args in _instructions(path)
              if op == "COPY" for src in args.split()[:-1]}
    assert copied == admitted
    assert not {".venv", "results", "halo-survey-out", "runs", "tests", "bench"} & admitted


def test_entrypoint_dispatches_every_subcommand_to_halo_survey():
    case = re.search(r'""\|-\*\|([\w|]+)\)', (CONTAINERS / "entrypoint.sh").read_text()).group(1)
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(case.split("|")) == set(subparsers.choices)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [(["scan", "--resume"], "HS scan --resume"), (["--help"], "HS --help"), ([], "HS"), (["echo", "ray"], "ray")],
)
def test_entrypoint_runs_halo_survey_or_the_given_command(tmp_path, argv, expected):
    fake = tmp_path / "halo-survey"
    fake.write_text('#!/bin/sh\necho HS "$@"\n')
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    done = subprocess.run(["sh", str(CONTAINERS / "entrypoint.sh"), *argv], env=env, capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[0].strip() == expected
