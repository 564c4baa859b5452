"""`halo-train report`: Markdown tables and PNG figures from protocol runs' results.json.

Every number in the report is read from a results.json written by `halo-train`, and each
table names the command that produced it.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_curve  # noqa: E402

PAPER_TABLE5 = {
    # Paper Table 5 (accuracy %, precision, recall, F1), quoted for comparison, not measured here.
    "cnn": ("86.87 ± 2.78", "0.905 ± 0.014", "0.860 ± 0.052", "0.881 ± 0.029"),
    "dense": ("84.68 ± 1.03", "0.869 ± 0.019", "0.863 ± 0.033", "0.865 ± 0.011"),
    "attention": ("94.41 ± 1.95", "0.934 ± 0.032", "0.972 ± 0.017", "0.952 ± 0.016"),
}


def _pm(m: dict, key: str, *, n: int, unit: str, percent: bool = False, digits: int = 3) -> str:
    """``mean ± std`` over ``n`` units (grouped repeats or paper-protocol runs); one has no spread, so it says so."""
    scale, places = (100, 2) if percent else (1, digits)
    mean = f"{m[key]['mean'] * scale:.{places}f}"
    return f"{mean} ± {m[key]['std'] * scale:.{places}f}" if n > 1 else f"{mean} (1 {unit}, no spread)"


def settings(result: dict) -> str:
    """The training settings that differ between runs: input scaling, learning rate, schedule and augmentation."""
    c = result["config"]
    return (f"{c.get('normalisation', 'minmax')}, Adam {c['learning_rate']:g}, "
            f"{c['epochs']}x{c['steps_per_epoch']} steps, patience {c['patience']}{augmentation(result)}")


def augmentation(result: dict) -> str:
    """``""`` for the paper's classic augmentation; else what was added: generated halos (which, how many, what weight)."""
    shares = dict(result["config"].get("kind_shares") or ())
    used = result.get("generated") or next((h["generated"] for h in result.get("histories", []) if h.get("generated")), None)
    if used:
        ratio = shares.get("1:generated", 0.0) / max(shares.get("1:centre", 1.0), 1e-12)
        return f", + {used['n']} {used['kind'].upper()} halos per fold at {ratio:.2f}:1 weight"
    return ", weighted draws (control)" if shares else ""


def paper_section(results: list[dict]) -> list[str]:
    """Table 5 reproduction: the paper's numbers next to ours under the paper's protocol."""
    lines = ["## Paper protocol (flattering: augmented test copies, checkpoint chosen on the test set, overlapping fields across splits)", "",
             "| run | arch | settings | accuracy [%] | precision | recall | F1 | runs |", "|---|---|---|---|---|---|---|---|"]
    for arch in dict.fromkeys(r["arch"] for r in results):
        quoted = PAPER_TABLE5.get(arch)
        if quoted:
            lines.append(f"| paper Table 5 | {arch} | the paper's | {' | '.join(quoted)} | 10 |")
        for r in (r for r in results if r["arch"] == arch):
            m = r["metrics"]
            cells = [_pm(m, "accuracy", n=r["runs"], unit="run", percent=True)]
            cells += [_pm(m, k, n=r["runs"], unit="run") for k in ("precision", "recall", "f1")]
            lines.append(f"| {r['run']} | {arch} | {settings(r)} | {' | '.join(cells)} | {r['runs']} |")
    lines += ["", "Commands:", ""] + [f"- `{r['command']}` ({r['wall_seconds'] / 60:.1f} min, {r['n_test_images']} test images)" for r in results] + [""]
    return lines


def grouped_section(results: list[dict]) -> list[str]:
    """Honest source-level table: mean ± std over repeats, with the random forest in the same folds."""
    lines = ["## Grouped protocol (honest: source level, overlap groups never split, checkpoint on an inner validation split)", "",
             "| run | arch | settings | scorer | accuracy | precision | recall | F1 | ROC-AUC |", "|---|---|---|---|---|---|---|---|---|"]
    labels = {"cnn_centre": "network, central cut-out", "cnn_tta": "network, mean of 16 rotated/flipped copies",
              "cnn_centre_at_threshold": "network, central cut-out, threshold {t}", "random_forest": "random forest (same folds)"}
    for r in results:
        for key, label in labels.items():
            m = r["metrics"][key]
            cells = [_pm(m, k, n=r["repeats"], unit="repeat") for k in ("accuracy", "precision", "recall", "f1", "roc_auc")]
            lines.append(f"| {r['run']} | {r['arch']} | {settings(r)} | {label.format(t=r['threshold'])} | {' | '.join(cells)} |")
    lines += ["", "False-positive rate on the side cut-outs of the test halos (class 0 'empty' sky), mean over repeats:", "",
              "| run | side cut-outs per repeat | FPR at 0.5 | FPR at threshold |", "|---|---|---|---|"]
    for r in results:
        sides = r["side_cutouts"]
        key = next(k for k in sides[0] if k.startswith("fpr_at_") and k != "fpr_at_0.5")
        lines.append(f"| {r['run']} | {sides[0]['n_side']} | {np.mean([s['fpr_at_0.5'] for s in sides]):.3f} | {np.mean([s[key] for s in sides]):.3f} ({key[7:]}) |")
    lines += ["", "Commands:", ""] + [
        f"- `{r['command']}` ({r['n_sources']} sources in {r['n_groups']} overlap groups, {r['n_folds']} folds x {r['repeats']} repeats, {r['wall_seconds'] / 60:.1f} min wall)"
        for r in results
    ] + [""]
    return lines


def loso_section(result: dict) -> list[str]:
    """The data README's baseline, recomputed."""
    m = result["metrics"]
    return ["## Random forest, leave-one-source-out (the data README's baseline)", "",
            f"Accuracy {m['accuracy']:.3f}, precision {m['precision']:.3f}, recall {m['recall']:.3f}, F1 {m['f1']:.3f}, ROC-AUC {m['roc_auc']:.3f} over {m['n']} sources.",
            "", f"Command: `{result['command']}` ({result['wall_seconds'] / 60:.1f} min)", ""]


def plot_grouped(result: dict, out_dir: Path) -> list[str]:
    """ROC curves per repeat, the confusion matrix and validation-loss curves of a grouped run."""
    preds = result["predictions"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for repeat in sorted({p["repeat"] for p in preds}):
        rows = [p for p in preds if p["repeat"] == repeat]
        y = [p["label"] for p in rows]
        for key, style in (("score", "-"), ("rf_score", ":")):
            fpr, tpr, _ = roc_curve(y, [p[key] for p in rows])
            axes[0].plot(fpr, tpr, style, label=f"{'network' if key == 'score' else 'random forest'} r{repeat}")
    axes[0].plot([0, 1], [0, 1], "k--", lw=0.5)
    axes[0].set(xlabel="false-positive rate", ylabel="true-positive rate", title=f"{result['run']}: source-level ROC (grouped folds)")
    axes[0].legend(fontsize=7)
    y = np.array([p["label"] for p in preds])
    pred = np.array([p["score"] >= 0.5 for p in preds]).astype(int)
    cm = np.array([[np.sum((y == t) & (pred == q)) for q in (0, 1)] for t in (0, 1)], float)
    cm /= cm.sum(1, keepdims=True)
    axes[1].imshow(cm, cmap="Blues", vmin=0, vmax=1)
    for (i, j), v in np.ndenumerate(cm):
        axes[1].text(j, i, f"{v:.2f}", ha="center", va="center")
    axes[1].set(xticks=[0, 1], yticks=[0, 1], xticklabels=["non-halo", "halo"], yticklabels=["non-halo", "halo"],
                xlabel="predicted (score ≥ 0.5)", ylabel="true", title="confusion matrix, rows normalised, all repeats")
    for h in result["histories"]:
        axes[2].plot(h["history"]["val_loss"], alpha=0.5)
    axes[2].set(xlabel="epoch", ylabel="validation loss (inner split)", title="training curves, every fold")
    fig.tight_layout()
    path = out_dir / f"{result['run']}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return [f"![{result['run']}]({path.name})", ""]


def write_report(run_dirs: list[Path], out: Path) -> Path:
    """Write ``out`` (Markdown) and PNG figures beside it from the runs' results.json."""
    results = [{**json.loads((d / "results.json").read_text()), "run": d.name} for d in run_dirs]
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = ["# Classifier results", "", f"Generated by `halo-train report {' '.join(map(str, run_dirs))} --out {out}` from the results.json of each run.", ""]
    grouped = [r for r in results if r["protocol"] == "grouped"]
    paper = [r for r in results if r["protocol"] == "paper"]
    if paper:
        lines += paper_section(paper)
    if grouped:
        lines += grouped_section(grouped)
        for r in grouped:
            lines += plot_grouped(r, out.parent)
    for r in results:
        if r["protocol"] == "random-forest-loso":
            lines += loso_section(r)
    for r in results:
        if r["protocol"] == "blind":
            from training.blind_report import blind_section

            lines += blind_section(r, out.parent)
    out.write_text("\n".join(lines) + "\n")
    return out
