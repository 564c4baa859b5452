"""The blind-scan protocol's section of ``docs/results.md``: tables and figures from one ``halo-train blind`` run.

Every number is read from the run's results.json (``training.blind.blind_protocol``); the
section names the command that produced it.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

from training.goal_cells import OFFSET_RINGS_ARCMIN, in_goal_cells  # noqa: E402

MODEL_NAMES = {
    "blind_cnn": "CNN, blind-scan training (injection, hard negatives, mining)",
    "paper_cnn": "CNN, paper-style training (the previous shipped recipe)",
    "random_forest": "random forest (block means)",
}


def _interval(values) -> str:
    low, high = values
    return f"[{low:.2f}, {high:.2f}]"


def sources_table(summary: dict) -> list[str]:
    """(a) Source-level scores of the 46 real sources, each model trained in the same folds."""
    lines = ["| model | ROC-AUC [95 %] | accuracy at 0.5 | recall at 0.5 | at the operating point |", "|---|---|---|---|---|"]
    for key, label in MODEL_NAMES.items():
        entry = summary["sources"].get(key)
        if entry is None:
            continue
        op = (f"recall {entry['recall_at_operating_point']:.2f}, false-positive rate "
              f"{entry['false_positive_rate_at_operating_point']:.2f}, accuracy {entry['accuracy_at_operating_point']:.2f}"
              if "recall_at_operating_point" in entry else "-")
        lines.append(f"| {label} | {entry['roc_auc']:.3f} {_interval(entry['roc_auc_95'])} | "
                     f"{entry['accuracy_at_0.5']:.3f} | {entry['recall_at_0.5']:.3f} | {op} |")
    return lines


def completeness_tables(summary: dict) -> list[str]:
    """(b) Blind-scan and targets-mode completeness per (flux, size) cell at each fold's operating point."""
    cells = list(summary["completeness_cells"].values())
    fluxes = sorted({c["flux_150mhz_jy"] for c in cells})
    sizes = sorted({c["r_e_arcmin"] for c in cells})
    by = {(c["flux_150mhz_jy"], c["r_e_arcmin"]): c for c in cells}
    lines = []
    for mode, key in (("blind scan (a candidate within 5')", "blind_recovered"), ("targets (the window on the halo)",
                                                                                  "targets_recovered")):
        lines += ["", f"Completeness, {mode}: recovered / injected", "",
                  "| S(150 MHz) \\ r_e | " + " | ".join(f"{s:g}'" for s in sizes) + " |",
                  "|---|" + "---|" * len(sizes)]
        for flux in fluxes:
            row = [f"{by[(flux, s)][key]}/{by[(flux, s)]['n']}" for s in sizes]
            lines.append(f"| {flux:g} Jy | " + " | ".join(row) + " |")
    goal = summary["goal_cells"]
    lines += ["", f"Halos brighter than 0.4 Jy with r_e <= 3' (the goal's cells, pooled): blind scan recovers "
              f"{goal['blind_recovered']} of {goal['n']} = {goal['fraction']:.0%} [{goal['fraction_95'][0]:.0%}, {goal['fraction_95'][1]:.0%}] (95 %, Wilson)."]
    return lines


def purity_completeness(result: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pooled over folds, at each recorded threshold: false candidates per deg2 and goal-cell blind completeness."""
    folds = result["folds"]
    thresholds = np.array(folds[0]["rate_thresholds"])
    counts = np.sum([f["test_false_counts"] for f in folds], axis=0)
    area = sum(f["test_area_deg2"] for f in folds)
    goal = [c for f in folds for c in f["completeness"] if in_goal_cells(c)]
    recovered = np.mean([c["blind_recovered_at_rate_thresholds"] for c in goal], axis=0) if goal else np.full(len(thresholds), np.nan)
    return thresholds, counts / area, recovered


def plot_blind(result: dict, out_dir: Path) -> list[str]:
    """Completeness maps (blind and targets) and the purity-completeness curve; returns the Markdown image lines."""
    summary = result["summary"]
    cells = list(summary["completeness_cells"].values())
    fluxes = sorted({c["flux_150mhz_jy"] for c in cells})
    sizes = sorted({c["r_e_arcmin"] for c in cells})
    by = {(c["flux_150mhz_jy"], c["r_e_arcmin"]): c for c in cells}
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    for ax, key, title in ((axes[0], "blind_recovered", "blind scan: candidate within 5'"),
                           (axes[1], "targets_recovered", "targets: window on the halo")):
        grid = np.array([[by[(f, s)][key] / max(by[(f, s)]["n"], 1) for s in sizes] for f in fluxes])
        image = ax.imshow(grid, origin="lower", cmap="viridis", vmin=0, vmax=1, aspect="auto")
        for (i, j), v in np.ndenumerate(grid):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="w" if v < 0.6 else "k", fontsize=8)
        ax.set(xticks=range(len(sizes)), xticklabels=[f"{s:g}" for s in sizes], yticks=range(len(fluxes)),
               yticklabels=[f"{f:g}" for f in fluxes], xlabel="e-folding radius r_e [arcmin]",
               ylabel="S(150 MHz) [Jy]", title=f"completeness, {title}")
        fig.colorbar(image, ax=ax, fraction=0.046)
    thresholds, rates, completeness = purity_completeness(result)
    axes[2].plot(rates, completeness, "o-", ms=3)
    for t, r, c in zip(thresholds, rates, completeness):
        if t in (0.5, 0.9, 0.95, 0.99):
            axes[2].annotate(f"{t:g}", (r, c), fontsize=7)
    op = summary["false_candidates"]["per_deg2"]
    axes[2].axvline(op, color="k", lw=0.6, ls="--", label=f"operating points: {op:.3f} per deg2")
    # symlog keeps a rate of 0 on the axis; its linear part spans the smallest measurable rate.
    positive = rates[rates > 0]
    axes[2].set_xscale("symlog", linthresh=float(positive.min()) if positive.size else 0.01)
    axes[2].set_xlim(left=0)
    axes[2].xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axes[2].set(xlabel="false candidates per deg2 (held-out fields)",
                ylabel="blind completeness, S > 0.4 Jy, r_e <= 3'", title="purity-completeness (thresholds marked)")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    path = out_dir / f"{result['run']}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return [f"![{result['run']}]({path.name})", ""]


def offset_table(result: dict) -> list[str]:
    """Shift tolerance on held-out fields: per ring of offsets from an injected goal-cell halo, its best window's score.

    A blind scan finds a halo only through windows near it; the rings say how far off the
    window centre a halo still scores above the fold's operating point.
    """
    rings = OFFSET_RINGS_ARCMIN
    rows = [(c, f["threshold"]) for f in result["folds"] for c in f["completeness"]
            if in_goal_cells(c)]
    if not rows or "ring_max_scores" not in rows[0][0]:
        return []  # none in the grid, or a run from before the rings were recorded
    scores = np.array([c["ring_max_scores"] for c, _ in rows], dtype=float)
    if np.isnan(scores).all():
        return []  # runs of 2026-11-30 recorded NaN for every ring (max(initial=nan)): nothing to show
    thresholds = np.array([t for _, t in rows])[:, None]
    lines = ["| best window at offset | " + " | ".join(f"{lo:g}-{hi:g}'" for lo, hi in zip(rings[:-1], rings[1:])) + " |",
             "|---|" + "---|" * (len(rings) - 1)]
    # A ring holds no window when the scan grid skips it (tiny rings, coarse window orders): "-", not 0 %.
    seen = ~np.isnan(scores)
    medians = [f"{np.median(col[ok]):.3f}" if ok.any() else "-" for col, ok in zip(scores.T, seen.T)]
    above = [f"{np.mean(col[ok] >= t[ok]):.0%}" if ok.any() else "-"
             for col, ok, t in zip(scores.T, seen.T, np.broadcast_to(thresholds, scores.shape).T)]
    lines.append("| median score | " + " | ".join(medians) + " |")
    lines.append("| at or above the operating point | " + " | ".join(above) + " |")
    return lines


def blind_section(result: dict, out_dir: Path) -> list[str]:
    """The whole section for one blind run."""
    summary = result["summary"]
    config = result["config"]
    fc = summary["false_candidates"]
    folds = result["folds"]
    lines = [f"## Blind-scan protocol (honest: the survey's question, on held-out real fields) - `{result['run']}`", "",
             f"Command: `{result['command']}` ({result['wall_seconds'] / 60:.0f} min on the machine of BENCHMARKS.md).",
             f"{config['n_folds']} grouped folds x {config['repeats']} repeat(s); per fold the classifier trains on its "
             "inner-training fields (real centres, halos injected into those fields, empty windows, compact sources, "
             f"{config['mining_rounds']} round(s) of hard-negative mining), early-stops and calibrates its threshold "
             f"({config['target_rate_per_deg2']:g} false candidates per deg2) on inner-validation fields, and is measured "
             "on the test fold's sources and fields, which it never saw in any role.", "",
             "### (a) The 46 real sources, source level", ""]
    lines += sources_table(summary)
    lines += ["", "### (c) False candidates on held-out real fields (15' around catalogued clusters and halo sources excluded)", "",
              f"At each fold's operating point: {fc['count']} false candidates in {fc['area_deg2']:.1f} deg2 = "
              f"{fc['per_deg2']:.3f} per deg2 {_interval(fc['per_deg2_95'])} (95 %, Poisson). "
              f"Thresholds per fold: {', '.join(f'{t:.3f}' for t in summary['thresholds'])}; on the validation fields "
              "they allowed " + ", ".join(f"{f['val_false_candidates']} in {f['val_area_deg2']:.1f} deg2" for f in folds) + ".", "",
              "### (b) Completeness of halos injected into held-out real fields, at the operating point"]
    lines += completeness_tables(summary)
    offsets = offset_table(result)
    if offsets:
        lines += ["", f"Shift tolerance: the best-scoring window in each ring of offsets around the "
                  f"{summary['goal_cells']['n']} goal-cell halos (at least 0.4 Jy, r_e <= 3'), held-out fields:", ""]
        lines += offsets
    lines += ["", "Each grid halo has random axis ratio (0.6-1), position angle, spectral index (-1.3 +- 0.2) and "
              "sub-structure; a blind scan scores every window within 20' and merges detections as the survey does.", ""]
    lines += plot_blind(result, out_dir)
    return lines
