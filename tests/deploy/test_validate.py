"""deploy/validate.py: each deployment file passes its tool's schema, and each validator rejects a broken one.

The negative fixtures are the project's own files with one mistake each (a typo in a key, a
wrong type, a missing GPU), written to a temporary file and checked by the same entry point
as the real ones: so a validator that accepted anything would fail here.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from deploy import validate

DEPLOY = validate.DEPLOY_DIR


def _load(name: str) -> dict:
    return yaml.safe_load((DEPLOY / name).read_text())


def _write(tmp_path: Path, document: dict) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.mark.parametrize("path", validate.deploy_files(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_every_deployment_file_passes_its_tools_schema(path):
    assert validate.check_file(path) == 1


def test_every_kind_of_deployment_file_is_there():
    kinds = {(d.get("apiVersion"), d.get("kind")) for p in validate.deploy_files() for d in yaml.safe_load_all(p.read_text())}
    assert {("ray.io/v1", "RayJob"), ("ray.io/v1", "RayCluster"), ("batch/v1", "Job"), (None, None)} <= kinds


def test_command_line_checks_every_file_and_exits_1_on_a_broken_one(tmp_path, capsys):
    assert validate.main([]) == 0
    assert capsys.readouterr().out.count("ok: ") == len(validate.deploy_files())
    broken = _load("k8s/gpu-job.yaml")
    broken["spec"]["backoffLimit"] = "three"
    assert validate.main([str(_write(tmp_path, broken))]) == 1
    assert "spec.backoffLimit" in capsys.readouterr().err


# --------------------------------------------------------------------------------------
# negative fixtures: (file, one mistake, what the message must say)
# --------------------------------------------------------------------------------------


def _rename(keys: list, old: str, new: str) -> Callable[[dict], None]:
    def change(document: dict) -> None:
        node = document
        for key in keys:
            node = node[key]
        node[new] = node.pop(old)
    return change


def _set(keys: list, value: object) -> Callable[[dict], None]:
    def change(document: dict) -> None:
        node = document
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return change


def _delete(keys: list) -> Callable[[dict], None]:
    def change(document: dict) -> None:
        node = document
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]
    return change


RAYJOB_GPU = ["spec", "rayClusterSpec", "workerGroupSpecs", 1, "template", "spec", "containers", 0]
RAYCLUSTER_GPU = ["spec", "workerGroupSpecs", 1, "template", "spec", "containers", 0]
JOB_CONTAINER = ["spec", "template", "spec", "containers", 0]

BROKEN = [
    # Ray's own schema (prepare_config, then validate_config)
    pytest.param("ray-cluster.yaml", _rename(["available_node_types", "gpu_worker"], "min_workers", "min_worker"),
                 r"available_node_types\.gpu_worker: Ray's cluster schema: .*'min_worker' was unexpected", id="launcher-key-typo"),
    pytest.param("ray-cluster.yaml", _set(["max_workers"], "12"),
                 r"max_workers: Ray's cluster schema: '12' is not of type 'integer'", id="launcher-wrong-type"),
    pytest.param("ray-cluster.yaml", _delete(["available_node_types", "gpu_worker", "resources", "GPU"]),
                 r"gpu_worker\.resources: runs REGISTRY/halo-survey:gpu but declares no GPU resource", id="launcher-no-gpu"),
    pytest.param("ray-cluster.yaml", _set(["available_node_types", "gpu_worker", "docker", "worker_run_options"], []),
                 r"gpu_worker\.docker: runs REGISTRY/halo-survey:gpu without --gpus all", id="launcher-no-gpus-option"),
    # the project's KubeRay schema (the RayJob's and RayCluster's own fields)
    pytest.param("k8s/survey-job.yaml", _rename(["spec"], "shutdownAfterJobFinishes", "shutdownAfterJobFinish"),
                 r"spec: KubeRay schema .*'shutdownAfterJobFinish' was unexpected", id="rayjob-key-typo"),
    pytest.param("k8s/survey-job.yaml", _set(["spec", "rayClusterSpec", "headGroupSpec", "rayStartParams", "num-cpus"], 0),
                 r"rayStartParams\.num-cpus: KubeRay schema .*0 is not of type 'string'", id="rayjob-wrong-type"),
    pytest.param("k8s/survey-job.yaml", _set(["spec", "backoffLimit"], "3"),
                 r"spec\.backoffLimit: KubeRay schema .*'3' is not of type 'integer'", id="rayjob-wrong-type-int"),
    pytest.param("k8s/raycluster.yaml", _rename(["spec", "workerGroupSpecs", 0], "maxReplicas", "maxReplica"),
                 r"workerGroupSpecs\[0\]: KubeRay schema .*'maxReplica' was unexpected", id="raycluster-key-typo"),
    # the RayJob's pod templates, as Kubernetes PodTemplates (kubernetes-validate, strict)
    pytest.param("k8s/survey-job.yaml", _rename(RAYJOB_GPU, "resources", "resouces"),
                 r"workerGroupSpecs\[1\]\.template \(as a PodTemplate\): .*PodTemplate schema: .*'resouces' was unexpected",
                 id="rayjob-template-key-typo"),
    pytest.param("k8s/survey-job.yaml", _set([*RAYJOB_GPU, "ports"], [{"containerPort": "8265"}]),
                 r"PodTemplate schema: '8265' is not of type 'integer'", id="rayjob-template-wrong-type"),
    pytest.param("k8s/survey-job.yaml", _rename(["spec", "submitterPodTemplate", "spec"], "restartPolicy", "restartPolicies"),
                 r"submitterPodTemplate \(as a PodTemplate\): .*'restartPolicies' was unexpected", id="submitter-key-typo"),
    pytest.param("k8s/survey-job.yaml", _delete([*RAYJOB_GPU, "resources", "limits", "nvidia.com/gpu"]),
                 r"workerGroupSpecs\[1\]\.template\.spec\.containers\[0\]\.resources: container 'ray-worker' runs "
                 r"REGISTRY/halo-survey:gpu without a nvidia.com/gpu limit", id="rayjob-no-gpu-limit"),
    pytest.param("k8s/raycluster.yaml", _set([*RAYCLUSTER_GPU, "resources", "requests", "nvidia.com/gpu"], 2),
                 r"nvidia.com/gpu request 2 differs from its limit 1", id="raycluster-gpu-request-not-limit"),
    # a plain Kubernetes Job (kubernetes-validate, strict)
    pytest.param("k8s/gpu-job.yaml", _rename(JOB_CONTAINER, "volumeMounts", "volumeMount"),
                 r"spec\.template\.spec\.containers\[0\]: Kubernetes 1\.31 Job schema: .*'volumeMount' was unexpected",
                 id="job-key-typo"),
    pytest.param("k8s/gpu-job.yaml", _set(["spec", "backoffLimit"], "3"),
                 r"spec\.backoffLimit: Kubernetes 1\.31 Job schema: '3' is not of type 'integer'", id="job-wrong-type"),
    pytest.param("k8s/gpu-job.yaml", _delete([*JOB_CONTAINER, "resources", "limits", "nvidia.com/gpu"]),
                 r"containers\[0\]\.resources: container 'halo-survey' runs REGISTRY/halo-survey:gpu without a "
                 r"nvidia.com/gpu limit", id="job-no-gpu-limit"),
    pytest.param("k8s/gpu-job.yaml", _set(["kind"], "Jobb"),
                 r"kind: Couldn't find schema for kind Jobb", id="job-unknown-kind"),
]


@pytest.mark.parametrize(("name", "change", "message"), BROKEN)
def test_validator_rejects_a_broken_copy_of_the_file(tmp_path, name, change, message):
    document = copy.deepcopy(_load(name))
    change(document)
    path = _write(tmp_path, document)
    with pytest.raises(validate.InvalidDeployFile, match=message):
        validate.check_file(path)


def test_every_fixture_breaks_a_file_that_passes_unbroken(tmp_path):
    """The negative fixtures start from files that pass, so each failure is the one mistake's."""
    for name in {param.values[0] for param in BROKEN}:
        assert validate.check_file(_write(tmp_path, _load(name))) == 1


def test_a_file_with_no_kubernetes_object_is_rejected(tmp_path):
    path = tmp_path / "notes.yaml"
    path.write_text("just: a mapping\n")
    with pytest.raises(validate.InvalidDeployFile, match=r"notes\.yaml: top level: not a Kubernetes object"):
        validate.check_file(path)
