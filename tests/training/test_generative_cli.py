"""`halo-train ddpm | wgan | generate | metrics`: the commands run end to end and refuse what they must."""

from __future__ import annotations

import json

import pytest

from training.cli import main

pytestmark = [pytest.mark.training, pytest.mark.realdata]


def test_generate_and_metrics_report_the_floor_baselines_and_each_model(smoke_wgan, gleam_dir, tmp_path, capsys):
    import numpy as np

    wgan_out = tmp_path / "wgan-samples"
    assert main(["generate", "--model", str(smoke_wgan["dir"]), "--n", "24", "--out", str(wgan_out)]) == 0
    # A set from a model trained on other halos cannot share the report's reference.
    other = tmp_path / "other-samples"
    other.mkdir()
    with np.load(wgan_out / "samples.npz") as data:
        arrays = dict(data)
    meta = json.loads(str(arrays["meta"]))
    meta["model"]["data"]["sources"] = meta["model"]["data"]["sources"][1:]
    np.savez(other / "samples.npz", **{**arrays, "meta": json.dumps(meta)})
    assert main(["metrics", "--generated", str(wgan_out), str(other), "--out", str(tmp_path / "q.json"),
                 "--data", str(gleam_dir)]) == 2
    assert "trained on different sources" in capsys.readouterr().err
    report_path = tmp_path / "q.json"
    assert main(["metrics", "--generated", str(wgan_out), "--out", str(report_path), "--n", "24",
                 "--data", str(gleam_dir)]) == 0
    report = json.loads(report_path.read_text())
    assert list(report["sets"]) == ["floor: real vs real (disjoint source halves)", "baseline: copies+noise",
                                    "baseline: pixel-gaussian", "wgan: wgan-samples"]
    assert len(report["reference"]["sources"]) == 18 and report["encoder"]["name"] == "random(seed=0)"
    for row in report["sets"].values():
        assert row["n"] == 24 and row["fid"] >= 0 and "per_band" in row["histogram"]


def test_training_commands_refuse_unknown_exclusions_and_existing_checkpoints(smoke_ddpm, gleam_dir, capsys):
    assert main(["ddpm", "--config", "smoke", "--out", str(smoke_ddpm["dir"]), "--data", str(gleam_dir)]) == 2
    assert "already holds a checkpoint; pass --resume" in capsys.readouterr().err
    assert main(["wgan", "--config", "smoke", "--out", str(smoke_ddpm["dir"]) + "-new", "--exclude", "A2163,Nowhere",
                 "--data", str(gleam_dir)]) == 2
    assert "cannot exclude ['Nowhere']" in capsys.readouterr().err


def test_help_lists_the_generative_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("ddpm", "wgan", "generate", "metrics"):
        assert command in out
