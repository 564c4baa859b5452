"""How many actors and what each reserves (survey.run.dataset)."""

from __future__ import annotations

from survey.run.dataset import CPU_ACTOR_THREADS, inference_actors, inference_resources
from tests.survey.run.helpers import (
    survey_args,
)


def test_fused_stages_start_one_actor_per_cpu_split_stages_one(model, tmp_path, monkeypatch):
    import ray

    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # Ray Data would start a local Ray on every core
    monkeypatch.setattr("os.cpu_count", lambda: 6)
    assert inference_actors(survey_args(model, tmp_path)) == 6
    assert inference_actors(survey_args(model, tmp_path, concurrency=3)) == 3
    assert inference_actors(survey_args(model, tmp_path, stages="split")) == 1
    assert inference_actors(survey_args(model, tmp_path, num_gpus=1.0)) == 1


def test_cpu_actors_run_one_thread_on_their_core_and_gpu_actors_reserve_their_gpu(model, tmp_path):
    assert inference_resources(survey_args(model, tmp_path)) == (CPU_ACTOR_THREADS, {"num_cpus": 1})
    assert inference_resources(survey_args(model, tmp_path, intra_op_threads=4)) == (4, {"num_cpus": 1})
    assert inference_resources(survey_args(model, tmp_path, num_gpus=1.0)) == (None, {"num_gpus": 1.0})
