"""`halo-train`: train, evaluate, export and report halo classifiers.

    halo-train classifier --arch attention --augment classic --out runs/final-attention
    halo-train classifier --arch cnn --protocol grouped --out runs/grouped-cnn
    halo-train classifier --arch cnn --protocol paper --runs 10 --out runs/paper-cnn
    halo-train blind --out results/blind-cnn        # injection, mining, calibration, completeness, false rate
    halo-train ship --out models/halo-classifier.onnx --metrics results/blind-cnn
    halo-train baseline --out runs/rf-loso
    halo-train export runs/final-cnn --out models/halo-classifier.onnx --metrics runs/paper-cnn runs/grouped-cnn
    halo-train report runs/paper-cnn runs/grouped-cnn --out docs/results.md
    halo-train manifest ../shared/data/gleam --out manifest.json
    halo-train ddpm --config compact --out runs/ddpm-compact [--resume] [--exclude "A2163,A3404"]
    halo-train wgan --out runs/wgan [--condition type]
    halo-train generate --model runs/ddpm-compact --n 64 --out runs/ddpm-compact/samples [--sampler ddim --steps 50]
    halo-train metrics --generated runs/ddpm-compact/samples runs/wgan/samples --out runs/quality.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from survey.config import data_dir
from survey.exceptions import HaloSurveyError


def _data_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", type=Path, default=None, help="directory of four-band FITS sets in *_DATA_0/1 folders (default: $HALO_DATA_DIR/gleam)")


def _data_path(args) -> Path:
    path = args.data or data_dir() / "gleam"
    if not path.is_dir():
        raise SystemExit(f"halo-train: error: data directory {path} does not exist (use --data or set HALO_DATA_DIR)")
    return path


def _train_config(args):
    from training.generated import PAPER_RATIO, generated_shares
    from training.train import TrainConfig

    # Weighted draws: always with generated halos (see training.generated), and on request
    # for classic augmentation, the control arm of a comparison with them.
    ratio = PAPER_RATIO if args.generated_ratio is None else args.generated_ratio
    shares = generated_shares(ratio) if args.draws == "weighted" or args.generated else ()
    return TrainConfig(arch=args.arch, epochs=args.epochs, steps_per_epoch=args.steps, batch_size=args.batch_size,
                       learning_rate=args.learning_rate, patience=args.patience,
                       normalisation=args.normalisation, seed=args.seed, kind_shares=shares)


def _generated_sets(args) -> list:
    """The ``--generated`` sets, checked against ``--augment``."""
    from training.generated import read_generated

    if args.augment == "classic":
        if args.generated:
            raise SystemExit("halo-train: error: --generated needs --augment ddpm or wgan")
        return []
    if not args.generated:
        raise SystemExit(f"halo-train: error: --augment {args.augment} needs --generated DIR "
                         "(the output of `halo-train generate`; one per fold for --protocol grouped)")
    if args.draws == "uniform":
        raise SystemExit("halo-train: error: generated halos are drawn by weight (--draws weighted)")
    sets = [read_generated(d) for d in args.generated]
    wrong = [str(s.directory) for s in sets if s.kind != args.augment]
    if wrong:
        raise SystemExit(f"halo-train: error: --augment {args.augment}, but {', '.join(wrong)} come from another model")
    return sets


def _blind_generated(args) -> list:
    """The ``--generated`` sets of ``blind`` and ``ship`` (one kind of generator at a time)."""
    from training.generated import read_generated

    sets = [read_generated(d) for d in args.generated]
    if len({s.kind for s in sets}) > 1:
        raise SystemExit("halo-train: error: --generated mixes DDPM and WGAN samples; compare them in separate runs")
    return sets


def _write_json(path: Path, payload: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=1, default=float))
    return path


def _command_line(args) -> str:
    """The command as given (to ``main``, or on the shell), so a result names what produced it."""
    return "halo-train " + " ".join(args.argv)


def _classifier(args) -> int:
    from training.data import load_training_set, write_manifest
    from training.evaluate import grouped_protocol, paper_protocol, timed

    generated = _generated_sets(args)
    data = _data_path(args)
    sources = load_training_set(data)
    config = _train_config(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_manifest(sources, out / "manifest.json", root=data)
    meta = {"command": _command_line(args), "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "config": asdict(config), "data": str(data)}
    if args.protocol == "paper":
        result = timed(paper_protocol, sources, config=config, runs=args.runs, generated=generated,
                       n_generated=args.n_generated)
    elif args.protocol == "grouped":
        result = timed(grouped_protocol, sources, config=config, n_folds=args.folds, repeats=args.repeats,
                       generated=generated, n_generated=args.n_generated)
    else:
        result = _train_final(sources, config, out, generated=generated[0] if generated else None,
                              n_generated=args.n_generated)
    _write_json(out / "results.json", {**meta, **result})
    print(f"wrote {out / 'results.json'} ({result.get('wall_seconds', 0):.0f} s)")
    return 0


def _folds(args) -> int:
    """Print each grouped fold's test sources: what a fold's generator must be trained without."""
    import numpy as np

    from training.data import load_training_set
    from training.evaluate import grouped_folds

    if args.ship:
        return _ship_held_out(args)
    sources = load_training_set(_data_path(args))
    groups, labels = np.array([s.group for s in sources]), np.array([s.label for s in sources])
    for repeat in range(args.repeats):
        folds = grouped_folds(groups, labels, n_folds=args.folds, seed=args.seed + 1000 * repeat)
        for fold in range(args.folds):
            names = [s.name for s, f in zip(sources, folds) if f == fold]
            print(f"{repeat}\t{fold}\t{','.join(names)}")
    return 0


def _ship_held_out(args) -> int:
    """Print the fields ``ship --seed`` keeps from training (early stopping and calibration): its generator's exclusions."""
    from training.ship import split_roles

    roles = split_roles(_fields(args)[1], seed=args.seed)
    print(f"ship\theld-out\t{','.join(f.name for f in [*roles['validation'], *roles['calibration']])}")
    return 0


def _train_final(sources, config, out: Path, *, generated=None, n_generated: int | None = None) -> dict:
    """Train on every source (and ``generated`` halos); early stopping on a group-disjoint inner validation split."""
    import numpy as np

    from training.data import fit_normalisation, samples_of
    from training.evaluate import inner_split, timed
    from training.generated import with_generated
    from training.train import train_classifier

    groups, labels = np.array([s.group for s in sources]), np.array([s.label for s in sources])
    train_idx, val_idx = inner_split(np.arange(len(sources)), groups, labels, fraction=0.2, seed=config.seed)
    train, val = samples_of([sources[i] for i in train_idx]), samples_of([sources[i] for i in val_idx])
    # The model card's normalisation is fitted on all sources the model will have seen.
    norm = fit_normalisation(samples_of(sources), kind=config.normalisation)
    if generated is not None:
        train = with_generated(train, generated, n=n_generated, seed=config.seed)
    result = timed(lambda: {"run": train_classifier(train, val, config=config, norm=norm, verbose=1)})
    run = result["run"]
    run.model.save(out / "model.keras")
    _write_json(out / "normalisation.json", norm.to_dict())
    return {"protocol": "final", "arch": config.arch, "wall_seconds": result["wall_seconds"], **run.summary(),
            "train_sources": [sources[i].name for i in train_idx], "val_sources": [sources[i].name for i in val_idx],
            "generated": generated.describe() if generated is not None else None}


def _fields(args):
    """The real fields of ``--data`` (less ``--exclude``) with their overlap groups, and the sources' band files."""
    import numpy as np

    from survey.sky.groups import overlap_groups
    from training.fields import data_sources, load_fields

    data = _data_path(args)
    excluded = {name.strip() for name in (getattr(args, "exclude", None) or "").split(",") if name.strip()}
    sources = data_sources(data)
    unknown = excluded - {s.name for s in sources}
    if unknown:
        raise SystemExit(f"halo-train: error: --exclude names no source: {', '.join(sorted(unknown))}")
    sources = [s for s in sources if s.name not in excluded]
    positions = np.array([s.centre_radec for s in sources])
    fields = load_fields(sources, overlap_groups(positions[:, 0], positions[:, 1]))
    return data, fields, {s.name: dict(s.files) for s in sources}


def _blind_config(args):
    from training.blind import BlindConfig
    from training.generated import PAPER_RATIO, generated_shares
    from training.samples import PoolSizes
    from training.train import TrainConfig

    defaults = BlindConfig()
    shares = defaults.train.kind_shares
    if args.generated:
        shares = generated_shares(PAPER_RATIO if args.generated_ratio is None else args.generated_ratio, base=shares)
    train = TrainConfig(**{**asdict(defaults.train), "epochs": args.epochs, "steps_per_epoch": args.steps,
                           "patience": args.patience, "normalisation": args.normalisation, "seed": args.seed,
                           "kind_shares": shares})
    return BlindConfig(train=train, sizes=PoolSizes(injected=args.injected, empty=args.empty, compact=args.compact),
                       n_folds=getattr(args, "folds", defaults.n_folds), repeats=getattr(args, "repeats", 1),
                       mining_rounds=args.mining_rounds, target_rate_per_deg2=args.target_rate,
                       per_cell=getattr(args, "per_cell", defaults.per_cell),
                       baselines=not getattr(args, "no_baselines", True), mock_fields=args.mock_fields, seed=args.seed,
                       training_seed=args.training_seed, ensemble=args.ensemble)


def _blind(args) -> int:
    from training.blind import blind_protocol, build_pools, training_mock_fields
    from training.data import load_training_set
    from training.evaluate import timed
    from training.fields import field_summary

    data, fields, _ = _fields(args)
    cutouts = load_training_set(data) if not args.no_baselines else None
    if cutouts is not None and [c.name for c in cutouts] != [f.name for f in fields]:
        raise SystemExit("halo-train: error: the baselines' sources and the fields differ in order; report this bug")
    config = _blind_config(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    mock = training_mock_fields(config)
    pools = build_pools([*fields, *mock], config, cache=Path(args.cache) if args.cache else None)
    result = timed(blind_protocol, fields, pools, config, cutouts=cutouts, generated=_blind_generated(args), mock=mock)
    meta = {"command": _command_line(args), "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "data": str(data), "fields": [dict(zip(row.colnames, [v.item() if hasattr(v, "item") else v for v in row]))
                                          for row in field_summary(fields)]}
    _write_json(out / "results.json", {**meta, **result})
    summary = result["summary"]
    print(f"wrote {out / 'results.json'} ({result['wall_seconds']:.0f} s): grouped ROC-AUC "
          f"{summary['sources']['blind_cnn']['roc_auc']:.3f}, {summary['false_candidates']['per_deg2']:.3f} false "
          f"candidates per deg2, goal cells recovered {summary['goal_cells']['fraction']:.0%}")
    return 0


def _ship(args) -> int:
    from training.ship import ship

    data, fields, files = _fields(args)
    card = ship(fields, files, Path(args.out), config=_blind_config(args), data=data, command=_command_line(args),
                metrics_dir=Path(args.metrics) if args.metrics else None, cache=Path(args.cache) if args.cache else None,
                generated=_blind_generated(args))
    op = card.metrics["operating_point"]
    print(f"wrote {args.out} and its card: threshold {card.threshold:.4f}, {op['calibration_false_candidates']} false "
          f"candidates in {op['calibration_area_deg2']:.1f} deg2 of the fields it never trained on")
    return 0


def _add_blind_options(p: argparse.ArgumentParser) -> None:
    """The options ``blind`` and ``ship`` share: how a blind-scan classifier is trained and calibrated."""
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--steps", type=int, default=40, help="batches per epoch")
    p.add_argument("--patience", type=int, default=6)
    p.add_argument("--injected", type=int, default=120, help="injected halos per field")
    p.add_argument("--empty", type=int, default=60, help="empty windows per field")
    p.add_argument("--compact", type=int, default=40, help="windows on compact sources per field")
    p.add_argument("--mining-rounds", type=int, default=1)
    p.add_argument("--mock-fields", type=int, default=0,
                   help="halo-free mock-sky fields (seed 1, not the demo's) added to the training fields only")
    p.add_argument("--normalisation", choices=["log", "snr-log"], default="log",
                   help="input scaling: signed log in Jy/beam, or in units of each band's noise")
    p.add_argument("--target-rate", type=float, default=0.1, help="false candidates per deg2 at the operating point")
    p.add_argument("--cache", default=None, help="directory caching the sample pools between runs")
    p.add_argument("--generated", nargs="+", default=[], metavar="DIR",
                   help="`halo-train generate` outputs whose halos join the training samples; a fold (or ship's "
                        "early-stopping and calibration fields) uses the first whose generator never saw its sources")
    p.add_argument("--generated-ratio", type=float, default=None,
                   help="weight of generated : real halo centres (default the paper's 5800:5440)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--training-seed", type=int, default=None,
                   help="seed of the classifiers' training alone (folds, pools and injections keep --seed's)")
    p.add_argument("--ensemble", type=int, default=1, metavar="K",
                   help="train K classifiers alike but for their training seed (seed, seed+1, ...) and average "
                        "their probabilities into one model")
    _data_arg(p)


def _baseline(args) -> int:
    from training.data import load_training_set
    from training.evaluate import leave_one_source_out_forest, timed

    sources = load_training_set(_data_path(args))
    result = timed(leave_one_source_out_forest, sources, seed=args.seed)
    path = _write_json(Path(args.out) / "results.json", {"command": _command_line(args), **result})
    print(f"random forest LOSO accuracy {result['metrics']['accuracy']:.3f}; wrote {path}")
    return 0


def _export(args) -> int:
    from training.export_run import export_run

    card = export_run(Path(args.run_dir), Path(args.out), metrics_dirs=[Path(p) for p in args.metrics], threshold=args.threshold)
    print(f"wrote {args.out} and its card ({card.architecture}, sha256 {card.onnx_sha256[:12]})")
    return 0


def _upgrade_model(args) -> int:
    from training.onnx_layout import upgrade_model

    card = upgrade_model(Path(args.model), out_path=Path(args.out) if args.out else None)
    print(f"wrote {args.out or args.model} and its card (version {card.card_version}, input "
          f"{card.input_spec.layout} {card.input_spec.shape}, sha256 {card.onnx_sha256[:12]})")
    return 0


def _add_reference(args) -> int:
    from training.onnx_layout import add_reference

    card = add_reference(Path(args.model), force=args.force)
    reference = card.reference
    print(f"wrote the card of {args.model}: reference inputs {list(reference.indices)}, halo probabilities "
          f"{', '.join(f'{p:.4f}' for p in reference.probabilities)} (checked to {reference.atol:g} whenever the "
          "survey loads the model)")
    return 0


def _card_metrics(args) -> int:
    from training.ship import attach_protocol_metrics

    try:
        card = attach_protocol_metrics(Path(args.model), Path(args.metrics))
    except ValueError as error:
        raise SystemExit(f"halo-train: error: {error}") from None
    summary = card.metrics["blind_protocol"]["summary"]
    print(f"wrote the card of {args.model}: the blind protocol's results from {args.metrics} (grouped ROC-AUC "
          f"{summary['sources']['blind_cnn']['roc_auc']:.3f}, {summary['false_candidates']['per_deg2']:.3f} false "
          "candidates per deg2)")
    return 0


def _report(args) -> int:
    from training.report import write_report

    path = write_report([Path(p) for p in args.run_dirs], Path(args.out))
    print(f"wrote {path}")
    return 0


def _compare(args) -> int:
    from training.compare import comparison_markdown

    pairs = []
    for pair in args.pairs:
        if pair.count(":") != 1:
            raise SystemExit(f"halo-train: error: {pair!r} is not CONTROL_DIR:TREATED_DIR")
        pairs.append(tuple(pair.split(":")))
    text = comparison_markdown(pairs, Path("."), pooled=args.pooled)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"Generated by `{_command_line(args)}`.\n\n" + text)
    print(f"wrote {out}")
    return 0


def _manifest(args) -> int:
    from training.data import load_training_set, write_manifest

    path = write_manifest(load_training_set(args.directory), Path(args.out), root=args.directory)
    print(f"wrote {path}")
    return 0


def _limit_threads(n: int | None) -> None:
    """Cap TensorFlow's thread pools before the first op (a shared machine; timings per core)."""
    if n:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(1 if n == 1 else 2)


def _excluded(args) -> tuple[str, ...]:
    """``--exclude "A,B" --exclude C`` -> ("A", "B", "C")."""
    return tuple(name.strip() for value in args.exclude or () for name in value.split(",") if name.strip())


def _halo_set(args, *, zero_centred: bool = False):
    from training.data import load_training_set
    from training.halos import halo_set

    return halo_set(load_training_set(_data_path(args)), split=args.split, exclude=_excluded(args), condition=args.condition,
                    zero_centred=zero_centred)


def _train_generator(args, configs, train, loss_key: str) -> int:
    """Train a DDPM or WGAN-GP on the halo set; the two commands differ only in their module."""
    from dataclasses import replace

    from training.checkpoints import training_end

    config = configs[args.config]
    changes = {k: v for k, v in (("total_steps", args.steps), ("seed", args.seed)) if v is not None}
    if getattr(args, "zero_centred", False):
        changes["zero_centred"] = True
    config = replace(config, **changes)
    halos = _halo_set(args, zero_centred=getattr(config, "zero_centred", False))
    result = train(halos, Path(args.out), config=config, resume=args.resume, stop_after=args.stop_after,
                   extend_to=args.extend_to, command=_command_line(args), log_every=args.log_every)
    loss = result.get(loss_key, float("nan"))
    goal = training_end(config.total_steps, extend_to=args.extend_to)
    print(f"{args.out}: step {result['step']}/{goal}, {loss_key.replace('_', ' ')} {loss:.4f}, "
          f"{result['seconds_per_step']:.2f} s/step")
    return 0


def _ddpm(args) -> int:
    _limit_threads(args.threads)
    from training.diffusion import DDPM_CONFIGS, train_ddpm

    return _train_generator(args, DDPM_CONFIGS, train_ddpm, "loss")


def _wgan(args) -> int:
    _limit_threads(args.threads)
    from training.wgan import WGAN_CONFIGS, train_wgan

    return _train_generator(args, WGAN_CONFIGS, train_wgan, "critic_loss")


def _generate(args) -> int:
    import time

    _limit_threads(args.threads)
    from training.generate import HaloGenerator, write_samples

    generator = HaloGenerator.from_dir(args.model)
    labels = generator.labels_for(args.n, label=args.label, seed=args.seed)
    started = time.perf_counter()
    x, labels = generator.sample_normalised(args.n, sampler=args.sampler, steps=args.steps, eta=args.eta,
                                            seed=args.seed, labels=labels, batch_size=args.batch_size)
    seconds = time.perf_counter() - started
    settings = {"n": args.n, "sampler": args.sampler if generator.kind == "ddpm" else "generator",
                "steps": args.steps if args.sampler == "ddim" else None, "eta": args.eta, "seed": args.seed,
                "label": args.label, "seconds": seconds, "seconds_per_sample": seconds / max(args.n, 1),
                "command": _command_line(args)}
    paths = write_samples(args.out, generator, x, labels, settings=settings, fits=args.fits)
    print(f"wrote {', '.join(str(p) for p in paths.values())} ({seconds / max(args.n, 1):.2f} s/sample)")
    return 0


def _metrics(args) -> int:
    import numpy as np

    _limit_threads(args.threads)
    from survey.model.normalisation import Normalisation
    from training.data import load_training_set
    from training.generate import read_labels, read_samples
    from training.halos import band_clip_levels, halo_set, select_halos
    from training.metrics import label_agreement, make_encoder, quality_markdown, quality_report

    generated, records = {}, []
    for directory in args.generated:
        images, meta = read_samples(directory)
        generated[f"{meta['model']['kind']}: {Path(directory).name}"] = images
        records.append(meta["model"]["data"])
    first = records[0]
    for other in records[1:]:
        if (other["sources"], other["normalisation"]) != (first["sources"], first["normalisation"]):
            raise ValueError("the generated sets come from models trained on different sources; compare them separately")
    sources = load_training_set(_data_path(args))
    halos = select_halos(sources, split=first["split"], exclude=first["excluded"])
    if [h.name for h in halos] != first["sources"]:
        raise ValueError(f"the data under {_data_path(args)} do not give the generators' training sources")
    images = np.stack([h.centre for h in halos])
    norm = Normalisation.from_dict(first["normalisation"])
    encoder = make_encoder(args.encoder, norm)
    report = quality_report(images, np.stack([h.noise for h in halos]), generated, encoder=encoder,
                            normalisation=norm, clip_levels=band_clip_levels(images), n=args.n, seed=args.seed,
                            names=[h.name for h in halos])
    conditional = [(d, r) for d, r in zip(args.generated, records) if r["condition"] == "type"]
    if conditional:
        typed = halo_set(sources, split=first["split"], exclude=first["excluded"], condition="type")
        report["label_agreement"] = {
            Path(d).name: label_agreement(typed.images, typed.labels, read_samples(d)[0], read_labels(d), encoder=encoder,
                                          vocabulary=typed.vocabulary, n=args.n, seed=args.seed)
            for d, _ in conditional}
    report["command"] = _command_line(args)
    path = _write_json(Path(args.out), report)
    Path(args.out).with_suffix(".md").write_text(quality_markdown(report))
    for name, row in report["sets"].items():
        print(f"{name:50s} FID {row['fid']:9.3f}  KID {row['kid_mean']:8.4f} ± {row['kid_std']:.4f}  "
              f"hist rel. err {row['histogram']['mean']:.3f} L1 {row['histogram']['l1']:.3f}")
    for name, per_label in report.get("label_agreement", {}).items():
        for label, row in per_label.items():
            print(f"{name}: {label:4s} nearest real image of the same type for {row['agreement'] or 0:.2f} of "
                  f"{row['n_generated']} samples (real images of other sources {row['real_agreement'] or 0:.2f}, "
                  f"chance {row['chance']:.2f})")
    print(f"wrote {path} and {path.with_suffix('.md')}")
    return 0


def _generative_args(p: argparse.ArgumentParser, *, condition: str) -> None:
    p.add_argument("--out", required=True, help="model directory (model.json, checkpoint/)")
    p.add_argument("--resume", action="store_true", help="continue the checkpoint in --out (same config and data)")
    p.add_argument("--steps", type=int, default=None, help="total optimiser (generator) steps; default: the config's")
    p.add_argument("--stop-after", type=int, default=None, help="stop with a checkpoint after this many steps in total")
    p.add_argument("--extend-to", type=int, default=None,
                   help="with --resume: train a finished run on to this many steps in total, at its schedule's final "
                        "learning rate (its configuration, which --steps would change, stays as stored)")
    p.add_argument("--exclude", action="append", default=[], metavar="NAME,...",
                   help="sources to leave out of training (a fold's test sources); repeatable, comma-separated")
    p.add_argument("--split", choices=["train", "all"], default="train",
                   help="train on the paper's 18 training halos (default) or all 23 (then --exclude a fold's test sources)")
    p.add_argument("--condition", choices=["none", "type", "source"], default=condition,
                   help="labels: none, the paper's halo types (H, cH, mH, cmH) or the source index")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--threads", type=int, default=None, help="TensorFlow intra-op threads (default: all cores)")
    p.add_argument("--log-every", type=int, default=50)
    _data_arg(p)


def build_parser() -> argparse.ArgumentParser:
    """The `halo-train` argument parser."""
    parser = argparse.ArgumentParser(prog="halo-train", description="Train, evaluate, export and report halo classifiers, and the generative models that augment them.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n", 2)[2])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("classifier", help="train a classifier, or evaluate one with a protocol")
    p.add_argument("--arch", choices=["cnn", "attention", "dense"], required=True)
    p.add_argument("--augment", choices=["classic", "ddpm", "wgan"], default="classic",
                   help="classic (rotations, flips, brightness) or classic plus generated halos in class 1")
    p.add_argument("--generated", nargs="+", default=[], metavar="DIR",
                   help="`halo-train generate` outputs; each fold uses the first whose generator never saw its test sources")
    p.add_argument("--generated-ratio", type=float, default=None,
                   help="weight of generated : real halos in class 1 (default the paper's 5800:5440)")
    p.add_argument("--n-generated", type=int, default=None, help="generated images added per fold (default all in the set)")
    p.add_argument("--draws", choices=["uniform", "weighted"], default=None,
                   help="batches drawn uniformly with class weights (the paper's; default for classic) or in proportion "
                        "to the weights (default with generated halos; with classic, the control arm)")
    p.add_argument("--protocol", choices=["paper", "grouped"], default=None, help="evaluate instead of training the final model on all sources")
    p.add_argument("--runs", type=int, default=10, help="paper protocol: independent runs")
    p.add_argument("--folds", type=int, default=5, help="grouped protocol: folds")
    p.add_argument("--repeats", type=int, default=3, help="grouped protocol: repeats with new fold assignments and seeds")
    p.add_argument("--epochs", type=int, default=25)
    p.add_argument("--steps", type=int, default=40, help="augmented batches per epoch")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--patience", type=int, default=5)
    p.add_argument("--normalisation", choices=["minmax", "log", "snr-log"], default="minmax",
                   help="input scaling: the paper's global min-max, signed-log then min-max, or that in noise units "
                        "(docs/classifiers.md says why)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="run directory (results.json, manifest.json, model.keras)")
    _data_arg(p)
    p.set_defaults(func=_classifier)

    p = sub.add_parser("folds", help="print each grouped fold's test sources (repeat, fold, names; tab-separated), "
                       "to train a fold's generator without them (--exclude)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--seed", type=int, default=0, help="the protocol's --seed (fold assignments derive from it)")
    p.add_argument("--ship", action="store_true",
                   help="instead, the fields `halo-train ship --seed` early-stops and calibrates on (one line)")
    _data_arg(p)
    p.set_defaults(func=_folds)

    p = sub.add_parser("blind", help="the blind-scan protocol: injected halos, hard-negative mining, a calibrated "
                       "operating point, completeness and false candidates on held-out real fields")
    p.add_argument("--out", required=True, help="run directory (results.json)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--per-cell", type=int, default=4, help="halos per completeness-grid cell per fold")
    p.add_argument("--no-baselines", action="store_true", help="skip the random forest and paper-style CNN")
    p.add_argument("--exclude", default=None, help="sources left out entirely (comma-separated names)")
    _add_blind_options(p)
    p.set_defaults(func=_blind)

    p = sub.add_parser("ship", help="train, mine, calibrate and export the survey's model (ONNX + card) from --data")
    p.add_argument("--out", required=True, help="path of the .onnx file; the card goes beside it")
    p.add_argument("--metrics", default=None, help="a halo-train blind run whose cross-validated results go into the card")
    p.add_argument("--exclude", default=None, help="sources left out entirely (comma-separated names), to measure "
                   "the model on them afterwards")
    _add_blind_options(p)
    p.set_defaults(func=_ship)

    p = sub.add_parser("baseline", help="random forest on block-averaged cut-outs, leave-one-source-out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    _data_arg(p)
    p.set_defaults(func=_baseline)

    p = sub.add_parser("export", help="export a trained run to ONNX with its model card (parity-checked)")
    p.add_argument("run_dir")
    p.add_argument("--out", required=True, help="path of the .onnx file; the card goes beside it")
    p.add_argument("--metrics", nargs="*", default=[], help="protocol run directories whose metrics go into the card")
    p.add_argument("--threshold", type=float, default=0.95)
    p.set_defaults(func=_export)

    p = sub.add_parser("upgrade-model", help="rewrite a model exported with an NHWC input (card version 1) to take "
                       "band planes (card version 2), weights untouched")
    p.add_argument("model", help="NAME.onnx with its version-1 card NAME.card.json beside it")
    p.add_argument("--out", default=None, help="write the upgraded .onnx (and card) here instead of in place")
    p.set_defaults(func=_upgrade_model)

    p = sub.add_parser("add-reference", help="store the model's probabilities on a few fixed inputs in its card, so "
                       "the survey refuses the file if its weights ever change (run it on a model known to be good)")
    p.add_argument("model", help="NAME.onnx with its card NAME.card.json beside it")
    p.add_argument("--force", action="store_true", help="replace a reference the card already has")
    p.set_defaults(func=_add_reference)

    p = sub.add_parser("card-metrics", help="put a halo-train blind run's cross-validated results into the card of a "
                       "model halo-train ship exported (the run must have measured the model's recipe)")
    p.add_argument("model", help="NAME.onnx with its card NAME.card.json beside it")
    p.add_argument("--metrics", required=True, help="the halo-train blind run directory")
    p.set_defaults(func=_card_metrics)

    p = sub.add_parser("report", help="Markdown + PNG report of protocol runs")
    p.add_argument("run_dirs", nargs="+")
    p.add_argument("--out", required=True, help="Markdown file; PNGs go beside it")
    p.set_defaults(func=_report)

    p = sub.add_parser("compare", help="paired differences of runs with and without generated halos")
    p.add_argument("pairs", nargs="+", metavar="CONTROL:TREATED",
                   help="two run directories of the same protocol, arch and seed, joined by ':'")
    p.add_argument("--pooled", action="store_true",
                   help="also pool the blind-scan pairs (alike but for --training-seed): a mean difference whose "
                        "interval resamples the seeds too")
    p.add_argument("--out", required=True, help="Markdown file")
    p.set_defaults(func=_compare)

    p = sub.add_parser("ddpm", help="train (or resume) a DDPM on the real halo cut-outs")
    p.add_argument("--config", choices=["paper", "compact", "smoke"], default="compact",
                   help="paper: Ho et al.'s U-Net, 63 M parameters (GPU); compact: about an hour on 2 CPU cores; smoke: tests")
    _generative_args(p, condition="none")
    p.add_argument("--zero-centred", action="store_true",
                   help="scale the halos so that clipped (zero) pixels map to 0, not to the paper's min-max position")
    p.set_defaults(func=_ddpm)

    p = sub.add_parser("wgan", help="train (or resume) the paper's conditional WGAN-GP on the real halo cut-outs")
    p.add_argument("--config", choices=["paper", "compact", "smoke"], default="paper",
                   help="paper: tables A1/A2 (about 6 s per step on this 2-core CPU, 10,000 steps); compact: half "
                        "widths, no 4096 x 4096 dense, for a CPU; smoke: tests")
    _generative_args(p, condition="source")
    p.set_defaults(func=_wgan)

    p = sub.add_parser("generate", help="draw halo cut-outs from a trained DDPM or WGAN (NPZ, optional FITS, PNG grid)")
    p.add_argument("--model", required=True, help="model directory of `halo-train ddpm` or `halo-train wgan`")
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--out", required=True, help="output directory (samples.npz, grid.png, samples.fits)")
    p.add_argument("--sampler", choices=["ddim", "ancestral"], default="ddim", help="DDPM sampler")
    p.add_argument("--steps", type=int, default=50, help="DDIM steps")
    p.add_argument("--eta", type=float, default=0.0, help="DDIM noise scale (0 deterministic, 1 ancestral-like)")
    p.add_argument("--label", default=None, help="conditional models: only this halo type or source")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--fits", action="store_true", help="also write samples.fits (one HDU per band)")
    p.add_argument("--threads", type=int, default=None)
    p.set_defaults(func=_generate)

    p = sub.add_parser("metrics", help="FID, KID and pixel-histogram errors of generated sets, beside a real-vs-real "
                       "floor and trivial baselines")
    p.add_argument("--generated", nargs="+", required=True, help="output directories of `halo-train generate`")
    p.add_argument("--out", required=True, help="JSON report")
    p.add_argument("--encoder", default="random",
                   help="features for FID/KID: random[:SEED] (offline, default), classifier:RUN_DIR, inception:WEIGHTS.h5")
    p.add_argument("--n", type=int, default=512, help="samples per set")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    _data_arg(p)
    p.set_defaults(func=_metrics)

    p = sub.add_parser("manifest", help="dataset manifest: sources, classes, groups, files and SHA-256")
    p.add_argument("directory", type=Path)
    p.add_argument("--out", required=True)
    p.set_defaults(func=_manifest)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``halo-train``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, HaloSurveyError) as exc:
        print(f"halo-train {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
