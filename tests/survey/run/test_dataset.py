"""How many actors and what each reserves (survey.run.dataset)."""

from __future__ import annotations

import pytest

from survey.run.dataset import (
    CPU_ACTOR_THREADS,
    TILES_PER_READ,
    actors_write_tiles,
    inference_actors,
    inference_resources,
    tiles_per_call,
    tiles_per_read,
)
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


@pytest.mark.parametrize("stages", ["fused", "split"])
def test_actors_write_their_tiles_only_where_every_node_sees_the_output(model, tmp_path, monkeypatch, stages):
    import ray

    nodes = [{"Alive": True}]
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "nodes", lambda: nodes)
    assert actors_write_tiles(survey_args(model, tmp_path, stages=stages))  # one node, local path
    assert not actors_write_tiles(survey_args(model, "memory://bucket/run", stages=stages))  # one process's filesystem
    nodes.append({"Alive": True})
    assert not actors_write_tiles(survey_args(model, tmp_path, stages=stages))  # another node may not see this disk
    assert actors_write_tiles(survey_args(model, "s3://bucket/run", stages=stages))
    assert actors_write_tiles(survey_args(model, tmp_path, stages=stages, tile_writes="actors"))  # said to be shared
    assert not actors_write_tiles(survey_args(model, "s3://bucket/run", stages=stages, tile_writes="driver"))


def test_actors_that_write_take_several_tiles_per_task_but_leave_every_actor_work(model, tmp_path):
    args = survey_args(model, tmp_path)  # orders 5/10: 1,024 windows a tile
    assert tiles_per_call(args, tiles=1000, actors=2) == 4  # 4,096 windows per task
    assert tiles_per_call(args, tiles=20, actors=2) == 2  # at least 4 tasks per actor
    assert tiles_per_call(args, tiles=3, actors=2) == 1
    assert tiles_per_call(survey_args(model, tmp_path, window_order=9), tiles=1000, actors=2) == 16


def test_split_stage_readers_take_several_tiles_per_task_but_leave_every_reader_work(monkeypatch):
    import ray

    assert tiles_per_read(tiles=1000, read_concurrency=2) == TILES_PER_READ
    assert tiles_per_read(tiles=16, read_concurrency=2) == 2  # at least 4 tasks per reader
    assert tiles_per_read(tiles=3, read_concurrency=8) == 1
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 100.0})  # a cluster, not the driver's cores
    assert tiles_per_read(tiles=800, read_concurrency=None) == 2
    assert tiles_per_read(tiles=64, read_concurrency=None) == 1
