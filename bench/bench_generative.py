"""Benchmark: what the generative models cost on this machine, training and sampling.

For each DDPM configuration (``paper``, ``compact``) and WGAN-GP configuration (``paper``,
``compact``), on the real halos of ``$HALO_DATA_DIR/gleam`` through the real training code
(``train_ddpm`` / ``train_wgan`` with ``stop_after``):

1. **Training**: seconds per optimiser step (generator step for the WGAN, which includes
   its five critic steps), the median over the timed steps after the first (which traces
   the graph), and the projected time of the configuration's full schedule.
2. **Sampling**: seconds per generated cut-out. DDPM: DDIM with 50 steps and the
   1000-step ancestral chain, measured end to end for ``compact``; for ``paper`` the
   ancestral chain is projected from the measured DDIM time per network evaluation
   (1000 evaluations against 50), and the table says so. WGAN: one generator pass.

Weights are those of a few training steps: sampling costs the same whatever the weights.
Prints a Markdown table headed by the machine. Examples::

    python bench/bench_generative.py --threads 1                  # ~15 min on one core
    python bench/bench_generative.py --threads 1 --skip-paper     # compact only, ~3 min
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np


def _machine() -> str:
    import tensorflow as tf

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return (f"{cpu}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start; "
            f"Python {platform.python_version()}, TensorFlow {tf.__version__}")


def _step_seconds(history_path: Path) -> float:
    """Median seconds per step over the logged intervals after the first (tracing)."""
    import json

    rows = [json.loads(line) for line in history_path.read_text().splitlines()]
    values = [r["seconds_per_step"] for r in rows[1:]] or [rows[-1]["seconds_per_step"]]
    return float(np.median(values))


def _timed(fn, *args, **kwargs) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def bench_ddpm(name: str, halos, workdir: Path, *, steps: int, samples: int, ancestral: bool) -> dict:
    """Train ``steps`` steps of DDPM ``name``, then time DDIM-50 (and the ancestral chain) sampling."""
    from training.diffusion import DDPM_CONFIGS, load_ddpm, train_ddpm

    config = replace(DDPM_CONFIGS[name], checkpoint_every=steps)
    out = workdir / f"ddpm-{name}"
    log_every = max(1, steps // 4)
    train_ddpm(halos, out, config=config, stop_after=steps, log=lambda _: None, log_every=log_every)
    per_step = _step_seconds(out / "history.jsonl")
    model, _ = load_ddpm(out)
    model.sample(1, steps=2, seed=0)  # trace the DDIM step once, outside the timing
    ddim = _timed(model.sample, samples, steps=50, seed=1, batch_size=samples) / samples
    row = {"model": f"DDPM {name}", "parameters": model.network.count_params(), "step_s": per_step,
           "full_schedule_h": per_step * config.total_steps / 3600, "batch": config.batch_size,
           "ddim50_s_per_sample": ddim}
    if ancestral:
        row["ancestral_s_per_sample"] = _timed(model.sample, samples, sampler="ancestral", seed=2,
                                               batch_size=samples) / samples
        row["ancestral_measured"] = True
    else:
        row["ancestral_s_per_sample"] = ddim * 1000 / 50
        row["ancestral_measured"] = False
    return row


def bench_wgan(name: str, halos, workdir: Path, *, steps: int, samples: int) -> dict:
    """Train ``steps`` generator steps of WGAN-GP ``name``, then time a generator pass per sample."""
    from training.wgan import WGAN_CONFIGS, load_wgan, train_wgan

    config = replace(WGAN_CONFIGS[name], checkpoint_every=steps)
    out = workdir / f"wgan-{name}"
    train_wgan(halos, out, config=config, stop_after=steps, log=lambda _: None, log_every=max(1, steps // 4))
    per_step = _step_seconds(out / "history.jsonl")
    model, _ = load_wgan(out)
    labels = np.zeros(samples, np.int32)
    model.sample(samples, labels=labels, seed=0)
    sample = _timed(model.sample, samples, labels=labels, seed=1) / samples
    params = model.generator.count_params() + model.critic.count_params()
    return {"model": f"WGAN-GP {name}", "parameters": params, "step_s": per_step,
            "full_schedule_h": per_step * config.total_steps / 3600, "batch": config.batch_size,
            "sample_s_per_sample": sample}


def table(rows: list[dict]) -> str:
    lines = ["| model | parameters | batch | s per training step | full schedule [h] | s per sample: DDIM 50 | "
             "s per sample: ancestral 1000 | s per sample: generator |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ancestral = "-"
        if "ancestral_s_per_sample" in r:
            ancestral = f"{r['ancestral_s_per_sample']:.2f}" + ("" if r["ancestral_measured"] else " (projected)")
        ddim = f"{r['ddim50_s_per_sample']:.3f}" if "ddim50_s_per_sample" in r else "-"
        gen = f"{r['sample_s_per_sample']:.4f}" if "sample_s_per_sample" in r else "-"
        lines.append(f"| {r['model']} | {r['parameters'] / 1e6:.2f} M | {r['batch']} | {r['step_s']:.2f} | "
                     f"{r['full_schedule_h']:.1f} | {ddim} | {ancestral} | {gen} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=None, help="TensorFlow intra-op threads (default: all cores)")
    p.add_argument("--steps", type=int, default=12, help="training steps timed per compact model")
    p.add_argument("--paper-steps", type=int, default=4, help="training steps timed per paper model")
    p.add_argument("--samples", type=int, default=8, help="cut-outs per sampling measurement")
    p.add_argument("--skip-paper", action="store_true", help="compact models only")
    options = p.parse_args(argv)
    import tensorflow as tf

    if options.threads:
        tf.config.threading.set_intra_op_parallelism_threads(options.threads)
        tf.config.threading.set_inter_op_parallelism_threads(options.threads)
    from survey.config import data_dir
    from training.data import load_training_set
    from training.halos import halo_set

    sources = load_training_set(data_dir() / "gleam")
    halos, typed = halo_set(sources), halo_set(sources, condition="type")
    print(_machine(), f"; {options.threads or 'all'} thread(s)\n")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-generative-") as tmp:
        work = Path(tmp)
        rows.append(bench_ddpm("compact", halos, work, steps=options.steps, samples=options.samples, ancestral=True))
        rows.append(bench_wgan("compact", typed, work, steps=options.steps, samples=options.samples))
        if not options.skip_paper:
            rows.append(bench_ddpm("paper", halos, work, steps=options.paper_steps, samples=2, ancestral=False))
            rows.append(bench_wgan("paper", typed, work, steps=options.paper_steps, samples=options.samples))
    print(table(rows))


if __name__ == "__main__":
    main()
