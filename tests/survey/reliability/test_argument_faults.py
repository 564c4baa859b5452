"""Argument faults that used to hang or print a traceback: CPUs, GPUs, providers, the cluster address.

Each is refused in one line naming the option. The resource checks run against the
corpus's Ray (2 CPUs, no GPU) through ``halo-survey scan``, after Ray is up and before
anything streams; ``resource_problems`` is also checked on described clusters.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from survey.run.arguments import SurveyArguments
from survey.run.resources import address_endpoint, resource_problems
from tests.survey.reliability.conftest import Result, Snapshot, run_cli, scan_argv

GIB = 1 << 30


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _one_line_error(result, option: str, *, among_ray_logs: bool = False) -> None:
    """rc 2, no traceback, and one line of ours naming ``option``: the first of stderr, or among Ray's own logs."""
    assert result.rc == 2 and "Traceback" not in result.text
    lines = result.err.strip().splitlines()
    ours = [line for line in lines if line.startswith("halo-survey")] if among_ray_logs else lines[:1]
    assert len(ours) == 1 and ours[0].startswith("halo-survey scan: error:") and option in ours[0]


# -- refused before anything starts -----------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-2"])
def test_a_local_ray_without_cpus_is_refused(model, tmp_path, value):
    snapshot = Snapshot(tmp_path)
    result = run_cli(scan_argv(model, tmp_path / "out", "--num-cpus", value))
    _one_line_error(result, f"--num-cpus {value}")
    snapshot.assert_unchanged()


def test_an_address_where_nothing_listens_fails_at_once(model, tmp_path):
    address = f"127.0.0.1:{_free_port()}"
    start = time.monotonic()
    result = run_cli(scan_argv(model, tmp_path / "out", "--address", address))
    _one_line_error(result, f"--address {address}: no Ray cluster there")
    assert time.monotonic() - start < 30  # ray.init alone waited for minutes


def test_an_address_that_does_not_answer_times_out(model, tmp_path):
    """In a fresh process (this one may hold the corpus's Ray): nothing answers at a routable but dead address.

    Either the connection itself times out, or (behind a proxy that accepts any connection)
    Ray's join does: both within the deadline, with one line naming --address.
    """
    argv = [str(a) for a in scan_argv(model, tmp_path / "out", "--address", "10.255.255.1:6379")]
    code = ("import sys; from survey.config import conf; from survey.cli import main; conf.connect_timeout = 3; "
            f"sys.exit(main({argv!r}))")
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240,
                          cwd=Path(__file__).resolve().parents[3], env={**os.environ, "RAY_AUTH_MODE": "disabled"})
    assert time.monotonic() - start < 120
    # Ray's C++ client logs its failed attempts (from the abandoned join too); ours is one line.
    _one_line_error(Result(done.returncode, done.stdout, done.stderr), "--address 10.255.255.1:6379: no Ray cluster",
                    among_ray_logs=True)


def test_an_empty_address_is_refused(model, tmp_path):
    _one_line_error(run_cli(scan_argv(model, tmp_path / "out", "--address", " ")), "--address")


def test_addresses_without_a_port_are_left_to_ray():
    assert address_endpoint("auto") is None and address_endpoint("http://head:8265") is None
    assert address_endpoint("[::1]:6379") == ("::1", 6379)


# -- refused against the running cluster -------------------------------------------------


@pytest.mark.ray
def test_a_gpu_actor_on_a_cluster_without_gpus_is_refused_before_streaming(ray_shared, model, tmp_path):
    output = tmp_path / "out"
    result = run_cli(scan_argv(model, output, "--num-gpus", "1"))
    _one_line_error(result, "--num-gpus 1: no node of the Ray cluster has 1 GPU(s)")
    assert not (output / "manifest.json").exists() and not (output / "halo-survey.lock").exists()


@pytest.mark.ray
def test_cuda_without_a_gpu_says_so_first_without_ray_tracebacks(ray_shared, model, tmp_path):
    result = run_cli(scan_argv(model, tmp_path / "out", "--providers", "cuda"))
    _one_line_error(result, "--providers cuda")
    assert len(result.err.strip().splitlines()) == 1


def _args(tmp_path, model, **kwargs) -> SurveyArguments:
    return SurveyArguments(model=model, output=tmp_path / "o", progress=False, **kwargs)


def test_a_cluster_without_cpus_is_named(model, tmp_path):
    problems = resource_problems(_args(tmp_path, model), [{"CPU": 0.0, "memory": 8 * GIB}])
    assert len(problems) == 1 and problems[0].startswith("--num-cpus: the Ray cluster has no node with a CPU")


def test_split_stages_that_no_node_can_hold_in_memory_are_named(model, tmp_path):
    problems = resource_problems(_args(tmp_path, model, stages="split"), [{"CPU": 4.0, "memory": 0.2 * GIB}])
    assert len(problems) == 1 and problems[0].startswith("--stages split: each reading task reserves")


def test_a_fraction_of_a_gpu_fits_where_a_whole_gpu_is(model, tmp_path):
    nodes = [{"CPU": 16.0, "GPU": 1.0, "memory": 64 * GIB}, {"CPU": 2.0, "memory": 4 * GIB}]
    assert resource_problems(_args(tmp_path, model, num_gpus=0.25), nodes) == []
    assert resource_problems(_args(tmp_path, model, num_gpus=2), nodes)[0].startswith("--num-gpus 2:")


def test_a_cluster_of_several_nodes_gets_time_to_scale_then_a_message(model, tmp_path, monkeypatch):
    """An autoscaling cluster (deploy/: GPU workers from zero) is asked for the GPU and waited for, not refused at once."""
    import ray.autoscaler.sdk

    from survey.run import resources

    asked = []
    monkeypatch.setattr(ray.autoscaler.sdk, "request_resources", lambda bundles: asked.append(bundles))
    monkeypatch.setattr(resources, "cluster_nodes", lambda: [{"CPU": 0.0}, {"CPU": 16.0, "memory": 64 * GIB}])
    start = time.monotonic()
    problems = resources.wait_for_nodes(_args(tmp_path, model, num_gpus=1, stages="fused"), wait_s=0.3, poll_s=0.1)
    assert 0.3 <= time.monotonic() - start < 5
    assert asked == [[{"GPU": 1.0}], []]  # asked, then the request withdrawn
    assert len(problems) == 1 and problems[0].startswith("--num-gpus 1:") and "waited 0.3 s" in problems[0]


def test_a_node_that_joins_while_waiting_lets_the_run_start(model, tmp_path, monkeypatch):
    import ray.autoscaler.sdk

    from survey.run import resources

    monkeypatch.setattr(ray.autoscaler.sdk, "request_resources", lambda bundles: None)
    views = iter([[{"CPU": 16.0}], [{"CPU": 16.0}], [{"CPU": 16.0}, {"CPU": 4.0, "GPU": 1.0}]])
    monkeypatch.setattr(resources, "cluster_nodes", lambda: next(views))
    assert resources.wait_for_nodes(_args(tmp_path, model, num_gpus=1), wait_s=30, poll_s=0.01) == []
