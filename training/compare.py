"""`halo-train compare`: paired differences between two protocol runs (with and without generated halos).

Two runs of the same protocol with the same seeds share their splits: the paper protocol's
run *i* has the same test split and initial seed in both, and the grouped protocol's folds
hold the same sources. A difference is therefore measured pairwise: per run (paper) or per
source with a paired bootstrap (grouped), which is far tighter than comparing two means
with their own spreads. Nothing here trains; it reads results.json files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy import stats
from sklearn.metrics import roc_auc_score

from training.goal_cells import in_goal_cells

PROTOCOL_NOTES = {"paper": " (flattering)", "grouped": " (honest, source level)",
                  "blind": " (honest, held-out fields)"}
"""How each protocol's numbers are to be read, printed beside them."""

PAPER_KEYS = ("accuracy", "f1", "roc_auc")
"""Per-run metrics of the paper protocol that are compared (over its augmented test copies)."""


def _arch(result: dict) -> str:
    """The classifier architecture of a run (blind runs keep it in their training config)."""
    return result.get("arch") or result["config"]["train"]["arch"]


def _check_same_protocol(control: dict, treated: dict) -> None:
    """Refuse pairs that do not share protocol, architecture, seed and (grouped) folds: they are not paired."""
    for key, value in (("protocol", lambda r: r["protocol"]), ("arch", _arch)):
        if value(control) != value(treated):
            raise ValueError(f"cannot pair a {key} {value(control)!r} run with a {value(treated)!r} one")
    if control["config"].get("seed") != treated["config"].get("seed"):
        raise ValueError("cannot pair runs with different seeds: their splits differ")


def paired_paper(control: dict, treated: dict) -> dict:
    """Per-run differences (treated - control) of the paper protocol's metrics, mean and 95 % t-interval.

    Parameters
    ----------
    control, treated : dict
        results.json of ``halo-train classifier --protocol paper`` runs with the same seed
        and number of runs.

    Returns
    -------
    dict
        Per metric: ``control``, ``treated`` (means), ``difference`` (mean of the per-run
        differences), ``difference_95`` and ``runs``.
    """
    _check_same_protocol(control, treated)
    if len(control["per_run"]) != len(treated["per_run"]):
        raise ValueError(f"{len(control['per_run'])} control runs against {len(treated['per_run'])} treated ones")
    out = {}
    for key in PAPER_KEYS:
        a = np.array([r[key] for r in control["per_run"]], dtype=float)
        b = np.array([r[key] for r in treated["per_run"]], dtype=float)
        out[key] = {"control": float(a.mean()), "treated": float(b.mean()), **_mean_interval(b - a), "runs": len(a)}
    return out


def _mean_interval(d: np.ndarray) -> dict:
    """Mean of paired differences and its 95 % Student-t interval (None for a single pair)."""
    mean = float(d.mean())
    if len(d) < 2:
        return {"difference": mean, "difference_95": None}
    half = float(stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
    return {"difference": mean, "difference_95": (mean - half, mean + half)}


def _source_scores(result: dict) -> dict[tuple[int, str], tuple[int, float]]:
    """(repeat, source) -> (label, centre score) of a grouped run's out-of-fold predictions."""
    return {(p["repeat"], p["name"]): (int(p["label"]), float(p["score"])) for p in result["predictions"]}


def paired_grouped(control: dict, treated: dict, *, n_boot: int = 2000, seed: int = 0) -> dict:
    """Source-level ROC-AUC and accuracy of two grouped runs, and their paired-bootstrap difference.

    Parameters
    ----------
    control, treated : dict
        results.json of ``halo-train classifier --protocol grouped`` runs with the same
        seed, folds and repeats (so every source is scored out-of-fold in both).
    n_boot : int
        Bootstrap resamples of the sources (the same resample for both runs).
    seed : int
        Seeds the resampling.

    Returns
    -------
    dict
        ``roc_auc`` and ``accuracy_at_0.5``: control, treated, difference, difference_95;
        ``sources``: how many (repeat, source) predictions were paired.
    """
    _check_same_protocol(control, treated)
    a, b = _source_scores(control), _source_scores(treated)
    if set(a) != set(b):
        raise ValueError(f"the runs scored different sources: {sorted(set(a) ^ set(b))[:5]} ...")
    keys = sorted(a)
    labels = np.array([a[k][0] for k in keys])
    sa, sb = np.array([a[k][1] for k in keys]), np.array([b[k][1] for k in keys])
    accuracy = {"control": lambda idx: np.mean((sa[idx] >= 0.5) == labels[idx]),
                "treated": lambda idx: np.mean((sb[idx] >= 0.5) == labels[idx])}
    statistics = {"roc_auc": lambda idx: roc_auc_score(labels[idx], sb[idx]) - roc_auc_score(labels[idx], sa[idx]),
                  "accuracy_at_0.5": lambda idx: accuracy["treated"](idx) - accuracy["control"](idx)}
    point = {"roc_auc": (roc_auc_score(labels, sa), roc_auc_score(labels, sb)),
             "accuracy_at_0.5": (accuracy["control"](slice(None)), accuracy["treated"](slice(None)))}
    out = {}
    for key, (c, t) in point.items():
        # Resamples holding one class have no ROC-AUC; both metrics skip them, so they share their resamples.
        interval = _paired_bootstrap(lambda idx: statistics[key](idx) if len(set(labels[idx])) == 2 else None,
                                     len(keys), n_boot=n_boot, seed=seed)
        out[key] = {"control": float(c), "treated": float(t), "difference": float(t - c), "difference_95": interval}
    out["sources"] = len(keys)
    return out


def _paired_bootstrap(statistic, n_items: int, *, n_boot: int, seed: int) -> tuple[float, float]:
    """95 % percentile interval of ``statistic(idx)`` over resamples ``idx`` of ``n_items`` paired items."""
    rng = np.random.default_rng(seed)
    values = [v for v in (statistic(rng.integers(0, n_items, n_items)) for _ in range(n_boot)) if v is not None]
    return (float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5)))


def _blind_items(result: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[list, list]]:
    """A blind run's source labels and scores, its goal-cell halos' recoveries, and the keys that pair them.

    The keys are the sources' names and the halos' (field, flux, size): two runs pair item
    by item only where these agree.
    """
    sources = [s for f in result["folds"] for s in f["sources"]]
    goal = [c for f in result["folds"] for c in f["completeness"] if in_goal_cells(c)]
    keys = ([s["name"] for s in sources], [(c["field"], c["flux_150mhz_jy"], c["r_e_arcmin"]) for c in goal])
    return (np.array([s["label"] for s in sources]), np.array([s["score"] for s in sources]),
            np.array([c["blind_recovered"] for c in goal], float), keys)


def paired_blind(control: dict, treated: dict, *, n_boot: int = 2000, seed: int = 0) -> dict:
    """Two blind-scan runs with the same folds: sources' ROC-AUC, goal-cell completeness, false-candidate rate.

    The completeness grid is drawn from the seed, so both runs inject the very same halos
    into the same test fields: each halo is a pair (recovered or not in each run). The
    false candidates are per fold totals, so their rates get each run's Poisson interval,
    not a paired one.

    Parameters
    ----------
    control, treated : dict
        results.json of ``halo-train blind`` runs with the same seed, folds and grid.
    n_boot : int
        Paired bootstrap resamples.
    seed : int
        Seeds the resampling.

    Returns
    -------
    dict
        ``roc_auc`` and ``goal_completeness`` (control, treated, difference, difference_95)
        and ``false_per_deg2`` (control, treated, difference, each run's interval).
    """
    _check_same_protocol(control, treated)
    (labels, sa, ga, (names, halos)), (_, sb, gb, (other_names, other_halos)) = map(_blind_items, (control, treated))
    if names != other_names:
        raise ValueError("the blind runs scored different sources: their folds differ")
    if halos != other_halos:
        raise ValueError("the blind runs injected different halos: their grids or seeds differ")

    def auc_difference(idx):
        if len(set(labels[idx])) < 2:
            return None
        return roc_auc_score(labels[idx], sb[idx]) - roc_auc_score(labels[idx], sa[idx])

    out = {"roc_auc": {"control": float(roc_auc_score(labels, sa)), "treated": float(roc_auc_score(labels, sb))},
           "goal_completeness": {"control": float(ga.mean()), "treated": float(gb.mean())}}
    out["roc_auc"]["difference_95"] = _paired_bootstrap(auc_difference, len(labels), n_boot=n_boot, seed=seed)
    out["goal_completeness"]["difference_95"] = _paired_bootstrap(lambda idx: float(gb[idx].mean() - ga[idx].mean()),
                                                                  len(ga), n_boot=n_boot, seed=seed)
    for entry in (out["roc_auc"], out["goal_completeness"]):
        entry["difference"] = entry["treated"] - entry["control"]
    rates = [r["summary"]["false_candidates"] for r in (control, treated)]
    out["false_per_deg2"] = {"control": rates[0]["per_deg2"], "treated": rates[1]["per_deg2"],
                             "difference": rates[1]["per_deg2"] - rates[0]["per_deg2"], "difference_95": None,
                             "intervals": (rates[0]["per_deg2_95"], rates[1]["per_deg2_95"])}
    return out


def pooled_blind(pairs: list[tuple[dict, dict]], *, n_boot: int = 2000, seed: int = 0) -> dict:
    """Blind-scan pairs that differ only in their training seed, pooled: the effect beyond one seed's luck.

    A single pair shares folds and injected halos, so its intervals cover which sources and
    halos were drawn, not the training's randomness, which moves a blind run's numbers as
    much as many a change does (``docs/blind-variants.md``). Here each difference is the
    mean over the pairs, and its interval comes from a two-level bootstrap: the pairs
    (training seeds) resampled, then the sources or halos, paired within each pair. The
    false-candidate rates are each arm's totals over every pair with a Poisson interval.

    Parameters
    ----------
    pairs : list of (dict, dict)
        (control, treated) results.json of ``halo-train blind`` runs, every run with the same
        folds and completeness grid.
    n_boot : int
        Bootstrap resamples.
    seed : int
        Seeds the resampling.

    Returns
    -------
    dict
        ``roc_auc`` and ``goal_completeness`` (control and treated means over the pairs,
        difference, difference_95, and ``per_pair`` differences) and ``false_per_deg2``
        (pooled rates, difference, each arm's interval); ``pairs``: how many.

    Raises
    ------
    ValueError
        The runs' protocols, sources or injected halos differ.
    """
    from training.blind import poisson_interval

    items = [[_blind_items(r) for r in pair] for pair in pairs]
    reference = items[0][0][3]
    for (control, treated), arms in zip(pairs, items):
        _check_same_protocol(control, treated)
        if any(arm[3] != reference for arm in arms):
            raise ValueError("the pooled blind runs scored other sources or injected other halos: folds or grids differ")
    labels = items[0][0][0]
    scores = np.array([[arm[1] for arm in arms] for arms in items])  # (pair, arm, source)
    recovered = np.array([[arm[2] for arm in arms] for arms in items])  # (pair, arm, halo)

    def auc_differences(pair_idx, idx):
        if len(set(labels[idx])) < 2:
            return None
        return float(np.mean([roc_auc_score(labels[idx], scores[k, 1, idx]) - roc_auc_score(labels[idx], scores[k, 0, idx])
                              for k in pair_idx]))

    def completeness_differences(pair_idx, idx):
        return float(np.mean(recovered[pair_idx][:, 1, idx].mean(axis=1) - recovered[pair_idx][:, 0, idx].mean(axis=1)))

    rng = np.random.default_rng(seed)
    out = {"pairs": len(pairs)}
    for key, statistic, n_items, per_arm in (
            ("roc_auc", auc_differences, len(labels),
             lambda k, arm: roc_auc_score(labels, scores[k, arm])),
            ("goal_completeness", completeness_differences, recovered.shape[2],
             lambda k, arm: float(recovered[k, arm].mean()))):
        boot = [statistic(rng.integers(0, len(pairs), len(pairs)), rng.integers(0, n_items, n_items))
                for _ in range(n_boot)]
        boot = [b for b in boot if b is not None]
        arms = np.array([[per_arm(k, arm) for arm in (0, 1)] for k in range(len(pairs))])
        out[key] = {"control": float(arms[:, 0].mean()), "treated": float(arms[:, 1].mean()),
                    "difference": float((arms[:, 1] - arms[:, 0]).mean()),
                    "difference_95": (float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))),
                    "per_pair": [float(d) for d in arms[:, 1] - arms[:, 0]]}
    totals = [[sum(pair[arm]["summary"]["false_candidates"][k] for pair in pairs) for k in ("count", "area_deg2")]
              for arm in (0, 1)]
    rates = [count / area for count, area in totals]
    out["false_per_deg2"] = {"control": rates[0], "treated": rates[1], "difference": rates[1] - rates[0],
                             "difference_95": None,
                             "intervals": tuple(tuple(v / area for v in poisson_interval(int(count)))
                                                for count, area in totals)}
    return out


def compare(control: dict, treated: dict) -> dict:
    """``paired_paper``, ``paired_grouped`` or ``paired_blind``, by the runs' protocol."""
    if control["protocol"] == "paper":
        return paired_paper(control, treated)
    if control["protocol"] == "grouped":
        return paired_grouped(control, treated)
    if control["protocol"] == "blind":
        return paired_blind(control, treated)
    raise ValueError(f"no paired comparison for protocol {control['protocol']!r}")


def _fmt(entry: dict, *, percent: bool) -> str:
    """``control | treated | difference [interval]``; each run's own interval where no paired one exists."""
    scale, unit, digits = (100, " pt", 1) if percent else (1, "", 3)
    low_high = entry["difference_95"]
    own = entry.get("intervals") or (None, None)
    interval = (f" [{low_high[0] * scale:+.{digits}f}, {low_high[1] * scale:+.{digits}f}]" if low_high
                else " (not paired)" if entry.get("intervals") else "")
    cells = [f"{entry[k] * scale:.{digits}f}" + (f" [{i[0] * scale:.{digits}f}, {i[1] * scale:.{digits}f}]" if i else "")
             for k, i in zip(("control", "treated"), own)]
    return f"{cells[0]} | {cells[1]} | {entry['difference'] * scale:+.{digits}f}{unit}{interval}"


def comparison_markdown(pairs: list[tuple[str, str]], root: Path, *, pooled: bool = False) -> str:
    """Markdown tables of every pair, each naming both runs' commands.

    Parameters
    ----------
    pairs : list of (str, str)
        (control, treated) run directories relative to ``root`` (or absolute).
    root : Path
        Where relative run directories are.
    pooled : bool
        Also pool the blind-scan pairs that differ only in their training seed
        (``seed_groups``, ``pooled_blind``) into rows of their own, one set per group.

    Returns
    -------
    str
    """
    lines = ["| protocol | arch | control -> treated | metric | control | treated | difference [95 %] |",
             "|---|---|---|---|---|---|---|"]
    commands, runs = [], []
    for control_dir, treated_dir in pairs:
        control, treated = (json.loads((root / d / "results.json").read_text()) for d in (control_dir, treated_dir))
        names = _names(control_dir, treated_dir)
        runs.append(((control, treated), names))
        lines += _result_rows(compare(control, treated), control, names)
        commands += [f"- `{control['command']}`", f"- `{treated['command']}`"]
    if pooled:
        groups = seed_groups([run for run in runs if run[0][0]["protocol"] == "blind"])
        if not groups:
            raise ValueError("pooling needs two or more blind-scan pairs alike but for their training seed")
        for group in groups:
            lines += _result_rows(pooled_blind([pair for pair, _ in group]), group[0][0][0],
                                  f"{group[0][1]}: the {len(group)} training seeds pooled (mean over seeds)")
    return "\n".join(lines + ["", "Commands:", ""] + commands) + "\n"


def _names(control_dir: str, treated_dir: str) -> str:
    """A pair's name in the tables: its two run directories' names."""
    return f"{Path(control_dir).name} -> {Path(treated_dir).name}"


def seed_groups(pairs: list[tuple[tuple[dict, dict], str]]) -> list[list[tuple[tuple[dict, dict], str]]]:
    """The blind pairs grouped by what they compare: alike but for their training seed, two or more to a group.

    Two pairs belong together when their control commands and their treated commands each
    agree once ``--out`` and ``--training-seed`` are dropped (so the DDPM and the WGAN arms
    against one control pool apart).

    Parameters
    ----------
    pairs : list of ((dict, dict), str)
        (control, treated) results.json, with the pair's name.

    Returns
    -------
    list of list
        The groups of two or more, in the order of their first pair.
    """
    groups: dict[tuple[str, str], list] = {}
    for pair, name in pairs:
        key = tuple(_without_seed_and_out(run["command"]) for run in pair)
        groups.setdefault(key, []).append((pair, name))
    return [group for group in groups.values() if len(group) >= 2]


def _without_seed_and_out(command: str) -> str:
    """A command line without its ``--out`` and ``--training-seed`` options (and their values)."""
    kept, skip = [], False
    for word in command.split():
        if skip:
            skip = False
        elif word in ("--out", "--training-seed"):
            skip = True
        elif not word.startswith(("--out=", "--training-seed=")):
            kept.append(word)
    return " ".join(kept)


def _result_rows(result: dict, control: dict, names: str) -> list[str]:
    """One table row per metric of a comparison."""
    label = control["protocol"] + PROTOCOL_NOTES[control["protocol"]]
    rows = []
    for key in (k for k in result if isinstance(result[k], dict)):
        percent = key.startswith("accuracy") or key in ("f1", "goal_completeness")
        rows.append(f"| {label} | {_arch(control)} | {names} | {key}{' [%]' if percent else ''} | "
                    f"{_fmt(result[key], percent=percent)} |")
    return rows


__all__ = ["paired_paper", "paired_grouped", "paired_blind", "pooled_blind", "seed_groups", "compare",
           "comparison_markdown"]
