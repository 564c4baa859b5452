"""Image-quality metrics of generated halo cut-outs, always beside a floor and trivial baselines.

Three measures (paper sections 2.3, 5.1, 5.2):

- **Pixel histograms** (paper Fig. 7 / 11): per band, the relative error per bin of the
  generated set's pixel-value histogram against the real set's, on the generative [-1, 1]
  scale (signed log, so faint and bright pixels both get bins). Clipped cut-outs are
  mostly exact zeros; those are counted apart (``zero_fraction``) and the histograms are
  of the surviving pixels, where the paper saw its "minor challenges".
- **FID** (Heusel et al.) and **KID** (Binkowski et al.; cubic polynomial kernel, unbiased
  MMD^2 over subsets of 32, the paper's size) on features of an encoder. InceptionV3
  weights cannot be downloaded here, so the encoder is one of:

  ``random``
      A fixed, seeded random convolutional network (64 features) on the generative
      scale: offline and always available; sensitive to texture and brightness
      statistics, blind to meaning. The default only because it needs nothing.
  ``classifier:RUN_DIR``
      The penultimate layer of a trained halo classifier (``halo-train classifier`` run
      directory with ``model.keras`` and ``normalisation.json``), fed with its own input
      scaling: features that separate halos from non-halos.
  ``inception:WEIGHTS``
      InceptionV3 (pool features, 2048) from a local weights file, as the paper: each
      band resized to 299 x 299 and repeated over three channels, one FID/KID per band
      (features of four bands together would be 8192-dimensional for a few hundred
      samples), averaged.

- **Reference points**, computed the same way: a *floor* (real against real: two halves
  of the sources, disjoint, each augmented to the same sample size), and two *trivial
  baselines*: ``copies+noise`` (classic-augmented copies of the training halos with
  Gaussian noise of each field's band sigma added and the clip applied again: a
  generator that memorised its training set) and ``pixel-gaussian`` (every pixel drawn
  independently from a Gaussian with the real set's per-pixel mean and standard deviation
  on the [-1, 1] scale: a generator that learned nothing about structure). A generator
  is worth something where it beats ``pixel-gaussian`` clearly; being near
  ``copies+noise`` or the floor means it reproduces the training halos, which is what
  these metrics, computed against the training set as the paper does, reward.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import linalg

from survey.model.normalisation import Normalisation
from survey.sky.bands import BAND_NAMES
from training.augment import Augmenter
from training.halos import reclip

KID_SUBSET_SIZE = 32
"""Samples per KID subset (paper section 2.3: "a sample size of 32")."""

# --------------------------------------------------------------------------------------
# Pixel histograms
# --------------------------------------------------------------------------------------


def histogram_relative_error(real: np.ndarray, generated: np.ndarray, *, zero_value: float, bins: int = 40,
                             value_range: tuple[float, float] = (-1.0, 1.0), min_count: int = 10) -> dict:
    """Per-band relative error per bin of the pixel histograms of two sets (paper Fig. 7).

    Pixels equal to ``zero_value`` (a clipped-away pixel on this scale) are left out of
    the histograms and reported as ``zero_fraction``. Each histogram is a density over the
    remaining pixels; the error of a bin is |h_gen - h_real| / h_real, over the bins with
    at least ``min_count`` real pixels (a bin of one or two bright pixels would otherwise
    decide the mean). ``l1`` sums |h_gen - h_real| over all bins (0 equal, 2 disjoint):
    the same comparison weighted by where the pixels are.

    Parameters
    ----------
    real, generated : numpy.ndarray
        (N, H, W, B) images on the generative [-1, 1] scale (N may differ).
    zero_value : float
        What a zero pixel maps to (``Normalisation.zero_level``).
    bins : int
        Histogram bins over ``value_range``.
    value_range : tuple of float
        Histogram range.
    min_count : int
        Real pixels a bin needs for its relative error to count.

    Returns
    -------
    dict
        ``mean`` (over bands of each band's mean relative error), ``per_band`` (band ->
        mean relative error), ``per_bin`` (band -> list, None where the real bin has fewer
        than ``min_count`` pixels), ``l1`` and ``l1_per_band``, ``edges``,
        ``zero_fraction_real`` and ``zero_fraction_generated`` (band -> fraction).
    """
    edges = np.linspace(*value_range, bins + 1)
    per_band, per_bin, l1, zero_real, zero_gen = {}, {}, {}, {}, {}
    for b, name in enumerate(BAND_NAMES[: real.shape[-1]]):
        r, g = real[..., b].ravel(), generated[..., b].ravel()
        r_kept, g_kept = r[r != zero_value], g[g != zero_value]
        zero_real[name], zero_gen[name] = 1.0 - r_kept.size / r.size, 1.0 - g_kept.size / g.size
        counts = np.histogram(r_kept, edges)[0]
        h_r = counts / max(r_kept.size, 1)
        h_g = np.histogram(g_kept, edges)[0] / max(g_kept.size, 1)
        enough = counts >= min_count
        error = np.where(enough, np.abs(h_g - h_r) / np.where(enough, h_r, 1.0), np.nan)
        per_bin[name] = [None if np.isnan(e) else float(e) for e in error]
        per_band[name] = float(np.nanmean(error)) if enough.any() else float("nan")
        l1[name] = float(np.abs(h_g - h_r).sum())
    return {"mean": float(np.mean(list(per_band.values()))), "per_band": per_band, "per_bin": per_bin,
            "l1": float(np.mean(list(l1.values()))), "l1_per_band": l1, "edges": edges.tolist(),
            "zero_fraction_real": zero_real, "zero_fraction_generated": zero_gen}


# --------------------------------------------------------------------------------------
# FID and KID on features
# --------------------------------------------------------------------------------------


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two feature sets: |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^1/2).

    >>> rng = np.random.default_rng(0)
    >>> a = rng.normal(size=(500, 4))
    >>> round(frechet_distance(a, a), 6)
    0.0
    """
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    root = linalg.sqrtm(cov_a @ cov_b)
    if not np.all(np.isfinite(root)):
        # Singular product (fewer samples than features): regularise, as pytorch-fid does.
        offset = np.eye(len(cov_a)) * 1e-6
        root = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    root = root.real
    distance = float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(root))
    return max(distance, 0.0)


def _polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def kernel_inception_distance(features_a: np.ndarray, features_b: np.ndarray, *, subset_size: int = KID_SUBSET_SIZE,
                              n_subsets: int = 100, seed: int | None = 0) -> tuple[float, float]:
    """KID: the unbiased MMD^2 with a cubic polynomial kernel, averaged over random subsets.

    Parameters
    ----------
    features_a, features_b : numpy.ndarray
        (N_a, D) and (N_b, D) features.
    subset_size : int
        Samples per subset from each set (32, the paper's); capped at the smaller set.
    n_subsets : int
        Subsets averaged.
    seed : int, optional
        Seeds the subset draws.

    Returns
    -------
    (float, float)
        Mean and standard deviation over subsets. Unbiased: about 0 (either sign) for two
        samples of one distribution.
    """
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {len(a)} and {len(b)}")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_subsets):
        x, y = a[rng.choice(len(a), m, replace=False)], b[rng.choice(len(b), m, replace=False)]
        k_xx, k_yy, k_xy = _polynomial_kernel(x, x), _polynomial_kernel(y, y), _polynomial_kernel(x, y)
        off = m * (m - 1)
        values.append((k_xx.sum() - np.trace(k_xx)) / off + (k_yy.sum() - np.trace(k_yy)) / off - 2.0 * k_xy.mean())
    return float(np.mean(values)), float(np.std(values))


# --------------------------------------------------------------------------------------
# Encoders
# --------------------------------------------------------------------------------------


@dataclass
class Encoder:
    """Features of clipped Jy/beam cut-outs: ``views(x)`` -> {view name: (N, D) features}.

    Most encoders have one view (``"all"``); the InceptionV3 one has a view per band.
    """

    name: str
    describe: str
    views: Callable[[np.ndarray], dict[str, np.ndarray]]


def random_encoder(normalisation: Normalisation, *, seed: int = 0) -> Encoder:
    """A fixed random convolutional encoder on the generative scale (64 features: mean and max of 32 maps).

    Parameters
    ----------
    normalisation : Normalisation
        The generative model's scaling (applied to the Jy/beam input).
    seed : int
        Seeds the weights: the same seed, the same features.

    Returns
    -------
    Encoder
        With one view, ``"all"``.
    """
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    image = keras.Input((None, None, 4))
    x = image
    for width in (16, 32, 32):
        x = layers.Conv2D(width, 3, strides=2, padding="same", activation="relu", kernel_initializer="he_normal")(x)
    features = layers.Concatenate()([layers.GlobalAveragePooling2D()(x), layers.GlobalMaxPooling2D()(x)])
    model = keras.Model(image, features)

    def views(x: np.ndarray) -> dict[str, np.ndarray]:
        return {"all": model.predict(normalisation.apply(x), batch_size=256, verbose=0)}

    return Encoder(f"random(seed={seed})", "fixed random conv net, 64 features, on the generative [-1, 1] scale", views)


def classifier_encoder(run_dir: str | Path) -> Encoder:
    """The penultimate layer of a trained halo classifier (a ``halo-train classifier`` run directory).

    Parameters
    ----------
    run_dir : path-like
        Holds ``model.keras`` and ``normalisation.json``.

    Returns
    -------
    Encoder
        With one view, ``"all"``: the input of the classifier's last Dense layer.
    """
    import json

    import keras

    run_dir = Path(run_dir)
    for name in ("model.keras", "normalisation.json"):
        if not (run_dir / name).exists():
            raise FileNotFoundError(f"{run_dir} has no {name}: pass a run directory of `halo-train classifier` "
                                    f"(without --protocol)")
    model = keras.saving.load_model(run_dir / "model.keras", compile=False)
    norm = Normalisation.from_dict(json.loads((run_dir / "normalisation.json").read_text()))
    features = keras.Model(model.inputs, model.layers[-1].input)

    def views(x: np.ndarray) -> dict[str, np.ndarray]:
        return {"all": features.predict(norm.apply(x), batch_size=256, verbose=0)}

    return Encoder(f"classifier({run_dir.name})", f"penultimate layer ({features.output.shape[-1]} features) of the "
                   f"{model.name} classifier in {run_dir}", views)


def inception_encoder(weights: str | Path, normalisation: Normalisation) -> Encoder:
    """InceptionV3 pool features from a local weights file; one view per band (299 x 299, grey repeated to RGB).

    Parameters
    ----------
    weights : path-like
        Keras InceptionV3 weights without the top (``..._notop.h5``).
    normalisation : Normalisation
        The generative scaling; its [-1, 1] is InceptionV3's own input range.

    Returns
    -------
    Encoder
        Views named by band.
    """
    import keras

    if not Path(weights).exists():
        raise FileNotFoundError(f"InceptionV3 weights {weights} not found")
    model = keras.applications.InceptionV3(include_top=False, weights=str(weights), pooling="avg",
                                           input_shape=(299, 299, 3))

    def views(x: np.ndarray) -> dict[str, np.ndarray]:
        scaled = normalisation.apply(x)
        out = {}
        for b, band in enumerate(BAND_NAMES[: x.shape[-1]]):
            feats = []
            for i in range(0, len(scaled), 32):
                plane = keras.ops.image.resize(scaled[i:i + 32, ..., b:b + 1], (299, 299), interpolation="bilinear")
                feats.append(keras.ops.convert_to_numpy(model(keras.ops.repeat(plane, 3, axis=-1), training=False)))
            out[band] = np.concatenate(feats)
        return out

    return Encoder("inceptionv3", f"InceptionV3 pool features per band from {weights}", views)


def make_encoder(spec: str, normalisation: Normalisation) -> Encoder:
    """``random`` | ``random:SEED`` | ``classifier:RUN_DIR`` | ``inception:WEIGHTS`` -> an Encoder."""
    kind, _, arg = spec.partition(":")
    if kind == "random":
        return random_encoder(normalisation, seed=int(arg or 0))
    if kind == "classifier" and arg:
        return classifier_encoder(arg)
    if kind == "inception" and arg:
        return inception_encoder(arg, normalisation)
    raise ValueError(f"encoder must be random[:SEED], classifier:RUN_DIR or inception:WEIGHTS_FILE, got {spec!r}")


# --------------------------------------------------------------------------------------
# Reference sets and the report
# --------------------------------------------------------------------------------------


def augmented_copies(images: np.ndarray, n: int, *, seed: int | None = 0) -> np.ndarray:
    """``n`` classic-augmented copies (rotation, flips, brightness) of ``images``, sources drawn in turn.

    Parameters
    ----------
    images : numpy.ndarray
        (M, H, W, B) base cut-outs, Jy/beam.
    n : int
        Copies to draw.
    seed : int, optional
        Seeds the augmentation.

    Returns
    -------
    numpy.ndarray
        (n, H, W, B) float32.
    """
    index = np.resize(np.arange(len(images)), n)
    return Augmenter(images, seed=seed).draw(index)


def copies_plus_noise(images: np.ndarray, noise: np.ndarray, n: int, *, seed: int | None = 0) -> np.ndarray:
    """The ``copies+noise`` baseline: each halo re-observed with new noise, clipped again, then augmented.

    Gaussian noise of the field's own band sigma is added to each base cut-out, which is
    then clipped at its own threshold per band (its faintest surviving pixel, about
    3 sigma of its field; ``image_clip_levels``), and the result augmented like real
    cut-outs. One clip level for all would not do: field noise differs tenfold.

    Parameters
    ----------
    images : numpy.ndarray
        (M, H, W, B) base cut-outs, Jy/beam.
    noise : numpy.ndarray
        (M, B) noise sigma of each cut-out's bands, Jy/beam.
    n : int
        Images to make.
    seed : int, optional
        Seeds noise and augmentation.

    Returns
    -------
    numpy.ndarray
        (n, H, W, B) float32 clipped Jy/beam.
    """
    images, noise = np.asarray(images, np.float32), np.asarray(noise, np.float32)
    index = np.resize(np.arange(len(images)), n)
    rng = np.random.default_rng(seed)
    noisy = images[index] + rng.standard_normal((n, *images.shape[1:])).astype(np.float32) * noise[index][:, None, None, :]
    levels = image_clip_levels(images, noise)[index][:, None, None, :]
    clipped = np.where(np.abs(noisy) < levels, np.float32(0.0), noisy)
    return Augmenter(clipped, seed=None if seed is None else seed + 1).draw(np.arange(n))


def image_clip_levels(images: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """(M, B) clip level of each cut-out and band: its faintest surviving |pixel|, or 3 sigma where none survived.

    Parameters
    ----------
    images : numpy.ndarray
        (M, H, W, B) clipped cut-outs, Jy/beam.
    noise : numpy.ndarray
        (M, B) band noise sigma, Jy/beam.

    Returns
    -------
    numpy.ndarray
        (M, B) float32 levels.
    """
    magnitude = np.abs(np.asarray(images, np.float32)).reshape(len(images), -1, images.shape[-1])
    faintest = np.where(magnitude > 0, magnitude, np.inf).min(axis=1)
    return np.where(np.isfinite(faintest), faintest, 3.0 * np.asarray(noise, np.float32)).astype(np.float32)


def pixel_gaussian(reference: np.ndarray, normalisation: Normalisation, clip_levels: np.ndarray, n: int, *,
                   seed: int | None = 0) -> np.ndarray:
    """The ``pixel-gaussian`` baseline: independent per-pixel Gaussians with the reference's mean and std on [-1, 1].

    Parameters
    ----------
    reference : numpy.ndarray
        (M, H, W, B) real cut-outs, Jy/beam.
    normalisation : Normalisation
        The generative scaling.
    clip_levels : numpy.ndarray
        (B,) levels for ``reclip``.
    n : int
        Images to draw.
    seed : int, optional
        Seeds the draw.

    Returns
    -------
    numpy.ndarray
        (n, H, W, B) float32 clipped Jy/beam.
    """
    scaled = normalisation.apply(reference)
    mean, std = scaled.mean(axis=0), scaled.std(axis=0)
    draw = np.random.default_rng(seed).standard_normal((n, *mean.shape)).astype(np.float32) * std + mean
    return reclip(normalisation.invert(np.clip(draw, -1.0, 1.0)), clip_levels)


def compare(reference: np.ndarray, candidate: np.ndarray, *, encoder: Encoder, normalisation: Normalisation,
            seed: int = 0, reference_views: dict | None = None) -> dict:
    """FID, KID and histogram errors of ``candidate`` against ``reference`` (both clipped Jy/beam).

    Parameters
    ----------
    reference, candidate : numpy.ndarray
        (N, H, W, B) cut-outs in clipped Jy/beam.
    encoder : Encoder
        Feature extractor.
    normalisation : Normalisation
        The generative scaling, for the histograms.
    seed : int
        Seeds KID's subsets.
    reference_views : dict, optional
        ``encoder.views(reference)`` when already computed.

    Returns
    -------
    dict
        ``n``, ``fid`` and ``kid_mean``/``kid_std`` (averaged over views), per-view
        values under ``views``, and ``histogram`` (``histogram_relative_error``).
    """
    ref_views = reference_views if reference_views is not None else encoder.views(reference)
    cand_views = encoder.views(candidate)
    views = {}
    for name, ref in ref_views.items():
        kid_mean, kid_std = kernel_inception_distance(ref, cand_views[name], seed=seed)
        views[name] = {"fid": frechet_distance(ref, cand_views[name]), "kid_mean": kid_mean, "kid_std": kid_std}
    hist = histogram_relative_error(normalisation.apply(reference), normalisation.apply(candidate),
                                    zero_value=float(normalisation.zero_level))
    return {"n": int(len(candidate)), "fid": float(np.mean([v["fid"] for v in views.values()])),
            "kid_mean": float(np.mean([v["kid_mean"] for v in views.values()])),
            "kid_std": float(np.mean([v["kid_std"] for v in views.values()])), "views": views, "histogram": hist}


def quality_report(images: np.ndarray, noise: np.ndarray, generated: dict[str, np.ndarray], *, encoder: Encoder,
                   normalisation: Normalisation, clip_levels: np.ndarray, n: int = 512, seed: int = 0,
                   names: Sequence[str] | None = None) -> dict:
    """Every generated set beside the floor and the trivial baselines, all against one real reference.

    The reference is ``n`` augmented copies of all training halos. The floor compares
    augmented copies of one half of the sources with copies of the other half (``n``
    each; sources split in alternation), the only way to have real images that are not the
    reference's own sources.

    Parameters
    ----------
    images : numpy.ndarray
        (M, H, W, B) the generators' real training cut-outs (one per source), Jy/beam.
    noise : numpy.ndarray
        (M, B) their fields' band noise, Jy/beam.
    generated : dict of str to numpy.ndarray
        Name -> (N, H, W, B) generated cut-outs in clipped Jy/beam (first ``n`` used).
    encoder : Encoder
        Feature extractor for FID/KID.
    normalisation : Normalisation
        The generative scaling (histograms, pixel-gaussian baseline).
    clip_levels : numpy.ndarray
        (B,) per-band clip levels (baselines).
    n : int
        Samples per set.
    seed : int
        Seeds the reference, baselines and KID subsets.
    names : sequence of str, optional
        Source names of ``images``, recorded.

    Returns
    -------
    dict
        ``reference`` (what it is), ``encoder``, and ``sets``: name -> ``compare`` output,
        floor and baselines first.
    """
    if len(images) < 2:
        raise ValueError("the floor needs at least two training sources")
    reference = augmented_copies(images, n, seed=seed)
    half_a, half_b = images[0::2], images[1::2]
    ref_views = encoder.views(reference)
    sets = {}
    floor_a = augmented_copies(half_a, n, seed=seed + 1)
    sets["floor: real vs real (disjoint source halves)"] = compare(
        floor_a, augmented_copies(half_b, n, seed=seed + 2), encoder=encoder, normalisation=normalisation, seed=seed)
    sets["baseline: copies+noise"] = compare(reference, copies_plus_noise(images, noise, n, seed=seed + 3),
                                             encoder=encoder, normalisation=normalisation, seed=seed,
                                             reference_views=ref_views)
    sets["baseline: pixel-gaussian"] = compare(reference, pixel_gaussian(reference, normalisation, clip_levels, n,
                                                                         seed=seed + 4),
                                               encoder=encoder, normalisation=normalisation, seed=seed,
                                               reference_views=ref_views)
    for name, x in generated.items():
        if len(x) < n:
            raise ValueError(f"{name}: {len(x)} generated samples, the report compares {n}; generate more or pass a "
                             f"smaller n")
        sets[name] = compare(reference, np.asarray(x[:n], np.float32), encoder=encoder, normalisation=normalisation,
                             seed=seed, reference_views=ref_views)
    return {"reference": {"n": n, "sources": list(names or []), "what": "classic-augmented copies of the generators' "
                          "training halos (the paper's practice: generated images are tested against the training set)"},
            "encoder": {"name": encoder.name, "what": encoder.describe}, "sets": sets}


def quality_markdown(report: dict) -> str:
    """The report as a Markdown table: floor and baselines first, then each generated set.

    Parameters
    ----------
    report : dict
        ``quality_report`` output (with ``command`` added by the CLI).

    Returns
    -------
    str
    """
    lines = [f"Generated by `{report.get('command', 'halo-train metrics')}`. Reference: {report['reference']['n']} "
             f"{report['reference']['what']}; features: {report['encoder']['name']} ({report['encoder']['what']}).", "",
             "| set | FID | KID | pixel histogram: mean relative error | histogram L1 (0 equal, 2 disjoint) | "
             "zero pixels (real / set) |", "|---|---|---|---|---|---|"]
    for name, row in report["sets"].items():
        hist = row["histogram"]
        zero_real = np.mean(list(hist["zero_fraction_real"].values()))
        zero_set = np.mean(list(hist["zero_fraction_generated"].values()))
        lines.append(f"| {name} | {row['fid']:.3f} | {row['kid_mean']:.4f} ± {row['kid_std']:.4f} | {hist['mean']:.3f} | "
                     f"{hist['l1']:.3f} | {zero_real:.2f} / {zero_set:.2f} |")
    for name, per_label in report.get("label_agreement", {}).items():
        lines += ["", f"Type agreement of `{name}` (nearest real halo in feature space has the sample's type):", "",
                  "| type | samples | agreement | real halos of other sources | chance |", "|---|---|---|---|---|"]
        for label, row in per_label.items():
            cells = [f"{row[k]:.2f}" if row[k] is not None else "-" for k in ("agreement", "real_agreement", "chance")]
            lines.append(f"| {label} | {row['n_generated']} | {' | '.join(cells)} |")
    return "\n".join(lines) + "\n"


def _nearest_labels(reference: np.ndarray, reference_labels: np.ndarray, query: np.ndarray,
                    allowed: np.ndarray | None = None) -> np.ndarray:
    """Label of each query's nearest reference feature vector (Euclidean, features standardised on the reference)."""
    mean, std = reference.mean(axis=0), reference.std(axis=0) + 1e-6
    ref, q = (reference - mean) / std, (query - mean) / std
    distance = (q ** 2).sum(1)[:, None] - 2 * q @ ref.T + (ref ** 2).sum(1)[None, :]
    if allowed is not None:
        distance = np.where(allowed, distance, np.inf)
    return reference_labels[np.argmin(distance, axis=1)]


def label_agreement(images: np.ndarray, labels: np.ndarray, generated: np.ndarray, generated_labels: np.ndarray, *,
                    encoder: Encoder, vocabulary: Sequence[str], n: int = 512, seed: int = 0) -> dict:
    """Whether conditional samples of a label look like real images of that label, against chance and a real floor.

    For each generated sample, the label of its nearest real image (augmented copies of
    the training halos) in the encoder's features. Chance is the share of that label
    among the real copies. The floor asks the same of the real images themselves: each
    source's copies against the copies of the *other* sources, so a label that real
    images of different sources do not share in feature space cannot be expected of
    samples either.

    Parameters
    ----------
    images : numpy.ndarray
        (M, H, W, B) real training cut-outs, one per source, clipped Jy/beam.
    labels : numpy.ndarray
        (M,) their int labels.
    generated : numpy.ndarray
        (N, H, W, B) conditional samples, clipped Jy/beam.
    generated_labels : numpy.ndarray
        (N,) the label each was drawn with.
    encoder : Encoder
        Features (the first view is used).
    vocabulary : sequence of str
        Label names.
    n : int
        Real augmented copies.
    seed : int
        Seeds the copies.

    Returns
    -------
    dict
        Per label name: ``n_generated``, ``agreement`` (share of its samples whose nearest
        real image has the label), ``real_agreement`` (the floor) and ``chance``.
    """
    index = np.resize(np.arange(len(images)), n)
    copies = augmented_copies(images, n, seed=seed)
    copy_labels, copy_sources = np.asarray(labels)[index], index
    real_features = next(iter(encoder.views(copies).values()))
    generated_features = next(iter(encoder.views(np.asarray(generated, np.float32)).values()))
    nearest = _nearest_labels(real_features, copy_labels, generated_features)
    nearest_real = _nearest_labels(real_features, copy_labels, real_features,
                                   allowed=copy_sources[:, None] != copy_sources[None, :])
    result = {}
    for k, name in enumerate(vocabulary):
        drawn, real = generated_labels == k, copy_labels == k
        if not drawn.any() and not real.any():
            continue
        result[name] = {"n_generated": int(drawn.sum()), "n_real_sources": int((np.asarray(labels) == k).sum()),
                        "agreement": float(np.mean(nearest[drawn] == k)) if drawn.any() else None,
                        "real_agreement": float(np.mean(nearest_real[real] == k)) if real.any() else None,
                        "chance": float(real.mean())}
    return result


__all__ = ["histogram_relative_error", "frechet_distance", "kernel_inception_distance", "Encoder", "random_encoder",
           "classifier_encoder", "inception_encoder", "make_encoder", "augmented_copies", "copies_plus_noise",
           "pixel_gaussian", "image_clip_levels", "compare", "quality_report", "label_agreement", "KID_SUBSET_SIZE"]
