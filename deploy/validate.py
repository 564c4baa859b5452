"""Offline checks of the deployment files: what ``ray up`` or the Kubernetes API would reject.

    python -m deploy.validate                          # every YAML file under deploy/
    python -m deploy.validate my-edited-job.yaml       # your own copy, before applying it

Each file is checked by the schema of the tool that reads it, without a cluster:

- a Ray cluster launcher config (it has ``cluster_name``): Ray's own ``prepare_config`` and
  then ``validate_config`` (``ray.autoscaler._private.util``), in the order ``ray up`` runs them;
- a built-in Kubernetes object (``Job``, ``PodTemplate``, ...): ``kubernetes-validate``
  in strict mode (an unknown field is an error), at ``KUBERNETES_VERSION``;
- a KubeRay ``RayCluster`` or ``RayJob``: the API server checks these against the KubeRay
  CRDs, which are not available offline, so their own fields are checked against
  ``deploy/schemas/kuberay-v1.schema.json`` (a strict subset of the CRDs) and each pod
  template in them as a Kubernetes ``PodTemplate``, strict.

What no schema says is checked too: a container of the GPU image, and a launcher node type
that runs it, must ask for a GPU (``nvidia.com/gpu`` in the container's limits; ``--gpus
all`` and a ``GPU`` resource for the launcher), or the CUDA provider finds no device and the
run silently scores on the CPU.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

DEPLOY_DIR = Path(__file__).resolve().parent
KUBERAY_SCHEMA = DEPLOY_DIR / "schemas" / "kuberay-v1.schema.json"
KUBERNETES_VERSION = "1.31"
"""The Kubernetes release the manifests are checked against (its API schemas, strict)."""

GPU_IMAGE = re.compile(r"halo-survey:[\w.-]*gpu")
"""An image reference of the GPU image (``halo-survey:gpu``, ``halo-survey:0.1.0-gpu``)."""
GPU_RESOURCE = "nvidia.com/gpu"


class InvalidDeployFile(ValueError):
    """A deployment file that its tool would reject; the message names the file, the place and why."""


def _fail(path: Path | str, where: str, why: str) -> None:
    raise InvalidDeployFile(f"{path}: {where or 'top level'}: {why}")


def _where(parts: Sequence[object]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")


# --------------------------------------------------------------------------------------
# Ray cluster launcher
# --------------------------------------------------------------------------------------


def check_ray_cluster_config(config: dict[str, Any], *, path: Path | str = "<config>") -> dict[str, Any]:
    """Validate a ``ray up`` config as ``ray up`` does; return the prepared config.

    Raises
    ------
    InvalidDeployFile
        Ray's schema rejects it (an unknown key, a wrong type), or a node type running the
        GPU image does not pass the GPUs into its container and advertise them to Ray.
    """
    from ray.autoscaler._private.util import prepare_config, validate_config

    try:
        prepared = prepare_config(copy.deepcopy(config))
        validate_config(prepared)
    except jsonschema.ValidationError as exc:
        _fail(path, _where(exc.absolute_path), f"Ray's cluster schema: {exc.message}")
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:  # prepare_config's own checks
        _fail(path, "", f"Ray's prepare_config/validate_config: {exc}")
    for name, node in prepared["available_node_types"].items():
        docker = {**prepared.get("docker", {}), **node.get("docker", {})}
        image = docker.get("worker_image") or docker.get("image", "")
        if name == prepared["head_node_type"]:
            image = docker.get("head_image") or docker.get("image", "")
        if not GPU_IMAGE.search(image):
            continue
        options = " ".join(docker.get("worker_run_options", []) + docker.get("run_options", []))
        if "--gpus" not in options:
            _fail(path, f"available_node_types.{name}.docker", f"runs {image} without --gpus all in its run options")
        if not node.get("resources", {}).get("GPU"):
            _fail(path, f"available_node_types.{name}.resources", f"runs {image} but declares no GPU resource")
    return prepared


# --------------------------------------------------------------------------------------
# Kubernetes objects
# --------------------------------------------------------------------------------------


def check_kubernetes_object(obj: dict[str, Any], *, path: Path | str = "<manifest>") -> None:
    """Validate a built-in Kubernetes object with ``kubernetes-validate``, strict."""
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        _fail(path, _where(exc.absolute_path), f"Kubernetes {KUBERNETES_VERSION} {obj.get('kind')} schema: {exc.message}")
    except kubernetes_validate.SchemaNotFoundError as exc:
        _fail(path, "kind", exc.message)


def _pod_templates(obj: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, template)`` for every pod template of a Job, RayCluster or RayJob."""
    spec = obj.get("spec", {})
    if obj.get("kind") == "Job":
        yield "spec.template", spec.get("template", {})
        return
    cluster = spec.get("rayClusterSpec", {}) if obj.get("kind") == "RayJob" else spec
    prefix = "spec.rayClusterSpec" if obj.get("kind") == "RayJob" else "spec"
    if "submitterPodTemplate" in spec:
        yield "spec.submitterPodTemplate", spec["submitterPodTemplate"]
    if "headGroupSpec" in cluster:
        yield f"{prefix}.headGroupSpec.template", cluster["headGroupSpec"].get("template", {})
    for i, group in enumerate(cluster.get("workerGroupSpecs", [])):
        yield f"{prefix}.workerGroupSpecs[{i}].template", group.get("template", {})


def _gpu_count(quantity: object) -> int:
    """A whole number of GPUs from a quantity (``1`` or ``"1"``); 0 for none or a fraction."""
    try:
        return max(int(str(quantity)), 0) if quantity is not None else 0
    except ValueError:
        return 0


def _check_gpu_limits(where: str, template: dict[str, Any], *, path: Path | str) -> None:
    for i, container in enumerate(template.get("spec", {}).get("containers", [])):
        if not GPU_IMAGE.search(container.get("image", "")):
            continue
        resources = container.get("resources", {})
        place = f"{where}.spec.containers[{i}].resources"
        limit = _gpu_count(resources.get("limits", {}).get(GPU_RESOURCE))
        if not limit:
            _fail(path, place, f"container {container.get('name')!r} runs {container['image']} without a {GPU_RESOURCE} limit")
        request = resources.get("requests", {}).get(GPU_RESOURCE)
        if request is not None and _gpu_count(request) != limit:
            _fail(path, place, f"{GPU_RESOURCE} request {request} differs from its limit {limit} (extended resources need them equal)")


def check_kuberay_object(obj: dict[str, Any], *, path: Path | str = "<manifest>") -> None:
    """Validate a KubeRay RayCluster or RayJob: own fields by the project's schema, pod templates by Kubernetes'."""
    schema = json.loads(KUBERAY_SCHEMA.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(obj))
    if error is not None:
        _fail(path, _where(error.absolute_path), f"KubeRay schema ({KUBERAY_SCHEMA.name}): {error.message}")
    for where, template in _pod_templates(obj):
        check_kubernetes_object(
            {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "template"}, "template": template},
            path=f"{path}: {where} (as a PodTemplate)",
        )


def check_manifest(obj: dict[str, Any], *, path: Path | str = "<manifest>") -> None:
    """Validate one Kubernetes document: KubeRay kinds by :func:`check_kuberay_object`, others strictly."""
    if not isinstance(obj, dict) or "kind" not in obj or "apiVersion" not in obj:
        _fail(path, "", "not a Kubernetes object (no apiVersion and kind)")
    if obj["apiVersion"].startswith("ray.io/"):
        check_kuberay_object(obj, path=path)
    else:
        check_kubernetes_object(obj, path=path)
    for where, template in _pod_templates(obj):
        _check_gpu_limits(where, template, path=path)


# --------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------


def check_file(path: Path | str) -> int:
    """Validate every document of a YAML file by its kind; return how many were checked."""
    path = Path(path)
    try:
        documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as exc:
        raise InvalidDeployFile(f"{path}: not valid YAML: {exc}") from exc
    if not documents:
        _fail(path, "", "no YAML document")
    for document in documents:
        if isinstance(document, dict) and "cluster_name" in document:
            check_ray_cluster_config(document, path=path)
        else:
            check_manifest(document, path=path)
    return len(documents)


def deploy_files() -> list[Path]:
    """Every YAML file under deploy/."""
    return sorted(DEPLOY_DIR.rglob("*.yaml"))


def main(argv: Sequence[str] | None = None) -> int:
    """Check the files named (default: every YAML file under deploy/); exit 1 on the first bad one."""
    paths = [Path(p) for p in (sys.argv[1:] if argv is None else argv)] or deploy_files()
    for path in paths:
        try:
            count = check_file(path)
        except InvalidDeployFile as exc:
            print(f"invalid: {exc}", file=sys.stderr)
            return 1
        print(f"ok: {path} ({count} document{'s' if count > 1 else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
