"""``halo-train compare`` (training.compare): paired differences, and refusal of runs that are not paired."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.cli import main
from training.compare import paired_blind, paired_grouped, paired_paper, pooled_blind, seed_groups


def _paper(accuracies, *, seed=0, arch="cnn"):
    return {"protocol": "paper", "arch": arch, "config": {"seed": seed}, "command": f"halo-train paper {accuracies}",
            "per_run": [{"accuracy": a, "f1": a / 2, "roc_auc": a} for a in accuracies]}


def _grouped(scores, labels, *, seed=0):
    return {"protocol": "grouped", "arch": "cnn", "config": {"seed": seed}, "command": "halo-train grouped",
            "predictions": [{"repeat": 0, "name": f"s{i}", "label": int(y), "score": float(s)}
                            for i, (s, y) in enumerate(zip(scores, labels))]}


def test_paper_differences_are_per_run_so_a_constant_gain_has_no_spread():
    result = paired_paper(_paper([0.5, 0.7, 0.9]), _paper([0.52, 0.72, 0.92]))
    acc = result["accuracy"]
    assert acc["difference"] == pytest.approx(0.02)
    assert acc["difference_95"][0] == pytest.approx(0.02) and acc["difference_95"][1] == pytest.approx(0.02)
    assert acc["control"] == pytest.approx(0.7) and acc["runs"] == 3


def test_grouped_difference_is_zero_for_identical_runs_and_positive_when_the_treated_run_ranks_better():
    rng = np.random.default_rng(0)
    labels = np.array([0, 1] * 20)
    noisy = labels + rng.normal(0, 1.0, labels.size)
    control = _grouped(1 / (1 + np.exp(-noisy)), labels)
    same = paired_grouped(control, control, n_boot=200)
    assert same["roc_auc"]["difference"] == 0.0 and same["roc_auc"]["difference_95"] == (0.0, 0.0)
    better = paired_grouped(control, _grouped(0.1 + 0.8 * labels, labels), n_boot=200)
    assert better["roc_auc"]["treated"] == 1.0 and better["roc_auc"]["difference_95"][0] > 0
    assert better["sources"] == labels.size


def test_runs_that_are_not_paired_are_refused():
    with pytest.raises(ValueError, match="seeds"):
        paired_paper(_paper([0.5]), _paper([0.5], seed=1))
    with pytest.raises(ValueError, match="arch"):
        paired_paper(_paper([0.5]), _paper([0.5], arch="dense"))
    with pytest.raises(ValueError, match="different sources"):
        paired_grouped(_grouped([0.1, 0.9], [0, 1]), _grouped([0.1, 0.9, 0.5], [0, 1, 1]))


def test_compare_cli_writes_a_table_naming_both_commands(tmp_path, capsys):
    for name, accuracies in (("control", [0.5, 0.6]), ("treated", [0.6, 0.7])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(_paper(accuracies)))
    out = tmp_path / "compare.md"
    assert main(["compare", f"{tmp_path / 'control'}:{tmp_path / 'treated'}", "--out", str(out)]) == 0
    text = out.read_text()
    assert "+10.0 pt" in text and "halo-train paper [0.5, 0.6]" in text and "halo-train paper [0.6, 0.7]" in text
    with pytest.raises(SystemExit):
        main(["compare", str(tmp_path / "control"), "--out", str(out)])


def _blind(scores, recovered, *, false=3):
    sources = [{"name": f"s{i}", "label": i % 2, "score": s} for i, s in enumerate(scores)]
    completeness = [{"field": "s0", "flux_150mhz_jy": 0.8, "r_e_arcmin": 2.0, "blind_recovered": bool(r)} for r in recovered]
    completeness.append({"field": "s0", "flux_150mhz_jy": 0.1, "r_e_arcmin": 2.0, "blind_recovered": True})
    return {"protocol": "blind", "config": {"seed": 0, "train": {"arch": "cnn"}}, "command": "halo-train blind",
            "folds": [{"sources": sources, "completeness": completeness}],
            "summary": {"false_candidates": {"count": false, "area_deg2": 30.0, "per_deg2": false / 30.0,
                                             "per_deg2_95": (0.01, 0.3)}}}


def test_blind_pairs_the_same_injected_halos_and_leaves_the_false_rate_unpaired():
    control = _blind([0.2, 0.6, 0.3, 0.7], [1, 0, 0, 1])
    treated = _blind([0.2, 0.6, 0.3, 0.7], [1, 1, 0, 1], false=6)
    result = paired_blind(control, treated, n_boot=200)
    assert result["goal_completeness"]["control"] == 0.5 and result["goal_completeness"]["treated"] == 0.75
    assert result["roc_auc"]["difference"] == 0.0
    assert result["false_per_deg2"]["difference"] == pytest.approx(0.1) and result["false_per_deg2"]["difference_95"] is None
    with pytest.raises(ValueError, match="different halos"):
        paired_blind(control, _blind([0.2, 0.6, 0.3, 0.7], [1, 0, 0]), n_boot=10)


def test_pooled_blind_pairs_average_over_training_seeds_and_resample_them():
    lucky = (_blind([0.2, 0.6, 0.3, 0.7], [0, 0, 0, 0]), _blind([0.2, 0.6, 0.3, 0.7], [1, 1, 1, 1], false=6))
    unlucky = (_blind([0.2, 0.6, 0.3, 0.7], [1, 1, 0, 0]), _blind([0.2, 0.6, 0.3, 0.7], [1, 1, 0, 0], false=0))
    result = pooled_blind([lucky, unlucky], n_boot=400)
    completeness = result["goal_completeness"]
    assert completeness["per_pair"] == [1.0, 0.0] and completeness["difference"] == 0.5
    assert completeness["difference_95"] == (0.0, 1.0)  # the seeds resampled: one seed's gain, or none
    assert result["false_per_deg2"]["control"] == result["false_per_deg2"]["treated"] == pytest.approx(6 / 60)
    same = pooled_blind([unlucky, unlucky], n_boot=50)
    assert same["roc_auc"]["difference_95"] == same["goal_completeness"]["difference_95"] == (0.0, 0.0)
    with pytest.raises(ValueError, match="other halos"):
        pooled_blind([lucky, (_blind([0.2, 0.6, 0.3, 0.7], [1, 0, 0]),) * 2], n_boot=10)


def test_seed_groups_pool_each_treatment_apart_and_drop_lone_pairs():
    def run(command):
        return {**_blind([0.2, 0.6], [1]), "command": command}

    control = "halo-train blind --folds 2 --out runs/c{seed} --training-seed {seed}"
    ddpm = "halo-train blind --folds 2 --out runs/d{seed} --training-seed {seed} --generated ddpm"
    wgan = "halo-train blind --folds 2 --out=runs/w{seed} --training-seed={seed} --generated wgan"
    pairs = [((run(control.format(seed=s)), run(arm.format(seed=s))), f"{name}{s}")
             for name, arm in (("d", ddpm), ("w", wgan)) for s in (0, 1, 2)]
    pairs.append(((run(control.format(seed=0)), run("halo-train blind --folds 5 --out x")), "lone"))
    groups = seed_groups(pairs)
    assert [[name for _, name in group] for group in groups] == [["d0", "d1", "d2"], ["w0", "w1", "w2"]]
