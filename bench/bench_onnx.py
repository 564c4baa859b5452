"""ONNX Runtime settings measured, not guessed: threads, batch size, fixed batch dimension, graph optimisation; against the model's FLOPs, this machine's GEMM rate, and Keras.

What it prints (Markdown, ready for BENCHMARKS.md), for one model (default: the shipped one):

1. The model's work per window: multiply-adds of every Conv, MatMul and Gemm, from the
   ONNX graph's shapes (``onnx.shape_inference``), and its parameters.
2. This machine's float32 GEMM rate on one thread (numpy's BLAS, limited with
   threadpoolctl): a large square product and the model's own im2col shapes (each
   convolution as a (batch x H x W, k x k x C_in) by (k x k x C_in, C_out) product) at the
   batch size given. Together with (1) that is the floor a window's inference cannot beat.
3. ONNX Runtime on the CPU: windows/s and CPU us per window for each combination of intra-op
   threads, batch size, a fixed or dynamic batch dimension and the graph optimisation level,
   each the best of ``--repeats`` rounds in which every setting is timed in turn; its
   fraction of the GEMM floor.
4. Keras ``predict_on_batch`` and ``predict`` against ONNX Runtime on the same network: the
   classifier's architecture built by ``training.models`` (random weights: speed does not
   depend on them) and exported by ``training.export``. Needs the ``train`` extra; skipped
   with a line saying so otherwise.

Example::

    python bench/bench_onnx.py --repeats 5
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from itertools import product
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from survey.defaults import DEFAULT_MODEL  # noqa: E402
from survey.model.modelcard import INPUT_NAME  # noqa: E402


def best_time(fn: Callable[[], object], *, repeats: int, inner: int) -> tuple[float, float]:  # one call alone
    """Best wall and CPU seconds of one call of ``fn`` over ``repeats`` rounds of ``inner`` calls (after one warm call)."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        for _ in range(inner):
            fn()
        wall.append((time.perf_counter() - w) / inner)
        cpu.append((time.process_time() - c) / inner)
    return min(wall), min(cpu)


# --------------------------------------------------------------------------------------
# The model's work
# --------------------------------------------------------------------------------------


def model_macs(path: Path) -> tuple[int, int, list[tuple[str, int, int, int]]]:
    """Multiply-adds per window, parameters, and each convolution's im2col GEMM shape (name, M/batch, K, N)."""
    import onnx
    from onnx import numpy_helper, shape_inference

    proto = onnx.load(str(path))
    for value in (*proto.graph.input, *proto.graph.output):  # batch 1, so shapes are per window
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].dim_value:
            dims[0].dim_value = 1
    proto = shape_inference.infer_shapes(proto)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in (*proto.graph.value_info, *proto.graph.input, *proto.graph.output)}
    weights = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    macs, convs = 0, []
    for node in proto.graph.node:
        if node.op_type == "Conv":
            w = weights[node.input[1]]
            out = shapes[node.output[0]]
            c_out, c_in_per_group, kh, kw = w.shape
            positions = int(np.prod(out[2:]))
            macs += positions * c_out * c_in_per_group * kh * kw
            convs.append((node.name, positions, c_in_per_group * kh * kw, c_out))
        elif node.op_type in ("MatMul", "Gemm"):
            a = shapes.get(node.input[0]) or list(weights[node.input[0]].shape)
            b = list(weights[node.input[1]].shape) if node.input[1] in weights else shapes[node.input[1]]
            macs += int(np.prod(a[:-1])) * a[-1] * b[-1]
    params = int(sum(w.size for w in weights.values()))
    return macs, params, convs


def gemm_rate(m: int, k: int, n: int, *, repeats: int) -> float:
    """float32 GFLOP/s of an (m, k) x (k, n) product on one BLAS thread."""
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((m, k), np.float32), rng.standard_normal((k, n), np.float32)
    out = np.empty((m, n), np.float32)
    with threadpool_limits(limits=1):
        wall, _ = best_time(lambda: np.matmul(a, b, out=out), repeats=repeats, inner=max(1, int(2e8 // (m * k * n)) + 1))
    return 2 * m * k * n / wall / 1e9


# --------------------------------------------------------------------------------------
# ONNX Runtime settings
# --------------------------------------------------------------------------------------


def fixed_batch_copy(path: Path, batch: int, directory: Path) -> Path:
    """A copy of the model whose input and output batch dimension is ``batch`` instead of dynamic."""
    import onnx

    proto = onnx.load(str(path))
    for value in (*proto.graph.input, *proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_param")
            dims[0].dim_value = batch
    out = directory / f"fixed-{batch}.onnx"
    onnx.save(proto, str(out))
    return out


def ort_session(path: Path, *, threads: int, optimisation: str):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
                                        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC}[optimisation]
    if threads == 1:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def interleaved(calls: dict[str, Callable[[], object]], *, repeats: int, inner: dict[str, int]) -> dict[str, tuple[float, float]]:
    """Best wall and CPU seconds per call of each of ``calls``, timed in turn, round after round.

    This VM's speed drifts by tens of per cent within minutes (bare ONNX Runtime moved from
    8,000 to 12,000 windows/s in one bench run): timing every setting in each round, rather
    than one setting after another, lets the drift touch all of them alike.
    """
    for fn in calls.values():
        fn()
    best: dict[str, tuple[float, float]] = {}
    for _ in range(repeats):
        for name, fn in calls.items():
            w, c = time.perf_counter(), time.process_time()
            for _ in range(inner[name]):
                fn()
            wall, cpu = (time.perf_counter() - w) / inner[name], (time.process_time() - c) / inner[name]
            old = best.get(name)
            best[name] = (min(wall, old[0]), min(cpu, old[1])) if old else (wall, cpu)
    return best


def ort_settings(path: Path, *, batches: list[int], threads: list[int], repeats: int, windows: int) -> list[dict]:
    """One row per setting: windows/s and CPU us per window."""
    rng = np.random.default_rng(0)
    settings = list(product(batches, threads, (False, True), ("all", "basic")))
    with tempfile.TemporaryDirectory(prefix="bench-onnx-") as scratch:
        calls, inner = {}, {}
        for setting in settings:
            batch, n_threads, fixed, optimisation = setting
            model = fixed_batch_copy(path, batch, Path(scratch)) if fixed else path
            session = ort_session(model, threads=n_threads, optimisation=optimisation)
            x = rng.uniform(-1, 1, (batch, 4, 64, 64)).astype(np.float32)
            calls[setting] = (lambda s=session, x=x: s.run(None, {INPUT_NAME: x}))
            inner[setting] = max(1, windows // batch)
        timed = interleaved(calls, repeats=repeats, inner=inner)
    rows = []
    for (batch, n_threads, fixed, optimisation), (wall, cpu) in timed.items():
        rows.append({"batch": batch, "threads": n_threads, "batch dimension": "fixed" if fixed else "dynamic",
                     "graph optimisation": optimisation, "windows/s": batch / wall, "CPU us/window": 1e6 * cpu / batch})
    return rows


# --------------------------------------------------------------------------------------
# Keras against ONNX Runtime
# --------------------------------------------------------------------------------------


def keras_vs_ort(architecture: str, *, batch: int, repeats: int, windows: int) -> list[dict] | str:
    """Keras predict_on_batch / predict and ONNX Runtime (1 thread) on one network, or why it was skipped."""
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        import tensorflow as tf

        from training.export import to_onnx
        from training.models import build_classifier
    except ImportError as exc:
        return f"skipped: {exc} (install the train extra)"
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    model = build_classifier(architecture)
    x = np.random.default_rng(0).uniform(-1, 1, (batch, 64, 64, 4)).astype(np.float32)
    planes = np.ascontiguousarray(np.moveaxis(x, -1, 1))
    with tempfile.TemporaryDirectory(prefix="bench-keras-") as scratch:
        path = to_onnx(model, Path(scratch) / f"{architecture}.onnx", architecture=architecture)
        session = ort_session(path, threads=1, optimisation="all")
        calls = {
            "Keras predict_on_batch (TF, 1 thread)": lambda: model.predict_on_batch(x),
            "Keras predict (TF, 1 thread)": lambda: model.predict(x, batch_size=batch, verbose=0),
            "ONNX Runtime (1 thread), the same network exported": lambda: session.run(None, {INPUT_NAME: planes}),
        }
        timed = interleaved(calls, repeats=repeats, inner={name: max(1, windows // batch) for name in calls})
    return [{"engine": name, "parameters": model.count_params(), "windows/s": batch / wall,
             "CPU us/window": 1e6 * cpu / batch} for name, (wall, cpu) in timed.items()]


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------


def table(rows: list[dict], *, formats: dict[str, str]) -> str:
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        lines.append("| " + " | ".join(format(row[k], formats.get(k, "")) for k in keys) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--batches", default="64,256,512", help="comma-separated batch sizes")
    p.add_argument("--threads", default="1,2", help="comma-separated intra-op thread counts")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--windows", type=int, default=2048, help="windows per timing round")
    p.add_argument("--architecture", default="cnn", help="network for the Keras comparison")
    options = p.parse_args(argv)
    import onnxruntime as ort

    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; numpy {np.__version__}, "
          f"onnxruntime {ort.__version__}; load average at start {os.getloadavg()[0]:.2f}\n")
    macs, params, convs = model_macs(options.model)
    print(f"Model {options.model.name}: {params:,} parameters, {macs / 1e6:.2f} M multiply-adds "
          f"({2 * macs / 1e6:.2f} MFLOP) per window\n")
    batch = 256
    rates = [{"product": "square 1024 x 1024 x 1024", "GFLOP/s (1 thread)": gemm_rate(1024, 1024, 1024, repeats=options.repeats)}]
    conv_flops, conv_seconds = 0.0, 0.0
    for name, positions, k, n in convs:
        rate = gemm_rate(batch * positions, k, n, repeats=options.repeats)
        flops = 2.0 * batch * positions * k * n
        conv_flops, conv_seconds = conv_flops + flops, conv_seconds + flops / (rate * 1e9)
        rates.append({"product": f"{name}: ({batch} x {positions}, {k}) x ({k}, {n})", "GFLOP/s (1 thread)": rate})
    print(table(rates, formats={"GFLOP/s (1 thread)": ".1f"}))
    floor_square = 2 * macs / (rates[0]["GFLOP/s (1 thread)"] * 1e9)
    floor_shapes = conv_seconds / batch + (2 * macs - conv_flops / batch) / (rates[0]["GFLOP/s (1 thread)"] * 1e9)
    print(f"\nGEMM floor per window on one thread: {1e6 * floor_square:.1f} us at the square rate, "
          f"{1e6 * floor_shapes:.1f} us at the model's own shapes\n")
    rows = ort_settings(options.model, batches=[int(b) for b in options.batches.split(",")],
                        threads=[int(t) for t in options.threads.split(",")], repeats=options.repeats,
                        windows=options.windows)
    for row in rows:
        row["of the GEMM floor (own shapes)"] = 1e6 * floor_shapes / row["CPU us/window"]
    print(table(rows, formats={"windows/s": ",.0f", "CPU us/window": ".1f", "of the GEMM floor (own shapes)": ".0%"}))
    keras = keras_vs_ort(options.architecture, batch=batch, repeats=options.repeats, windows=options.windows)
    print(f"\nKeras vs ONNX Runtime, the {options.architecture} architecture of training.models, batch {batch}:\n")
    print(keras if isinstance(keras, str) else table(keras, formats={"windows/s": ",.0f", "CPU us/window": ".1f"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
