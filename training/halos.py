"""The generative models' training set: real halo cut-outs, scaled to [-1, 1], with labels to condition on.

Both generative models (``training.diffusion``, ``training.wgan``) learn from the same
thing: the central cut-outs of the real halo sources (``training.data.load_training_set``,
which cuts them with the survey's one model-input builder), augmented on the fly as the
classifiers are (``training.augment``: rotations by 45 deg, flips, brightness x
U[0.9, 1.4]; the paper's 5,440 halo images are such copies of its 18 training halos), and
scaled with the paper's generative normalisation (appendix A: signed log, global min-max,
[-1, 1]; ``survey.model.normalisation`` kind ``log-minmax-sym``).

A generative model used inside a classifier's fold must not have seen that fold's test
sources: ``select_halos`` takes them as ``exclude`` and the model directories record what
was excluded and what was trained on.

Conditioning labels
-------------------
``condition="type"`` uses the paper's halo types (Table 1: H, cH, mH, cmH; the paper's
binary classifier puts all four in class 1). Of our 18 training halos 7 are H, 9 cH and 2
cmH; the only mH (RXC J0137.2-0912) is a test source, so a type-conditional model trained
on the paper's split has never seen an mH. ``condition="source"`` embeds the source index
instead, which is what the paper's WGAN tables imply (an embedding over 10 inputs: the 10
sources of its single-frequency set). ``condition="none"``: unconditional.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from survey.model.normalisation import Normalisation
from survey.sky.bands import BAND_NAMES
from training.augment import BRIGHTNESS_RANGE, Augmenter
from training.data import SampleSet, SourceCutouts, fit_normalisation

HALO_TYPES = ("H", "cH", "mH", "cmH")
"""The paper's halo types (Table 1): halo, candidate halo, minihalo, candidate minihalo."""

PAPER_HALO_TYPE: dict[str, str] = {
    # Paper Table 1, by our source names; "H and RG" -> H, "cH (or cR)" -> cH, "cmH (or R)" -> cmH.
    "A0141": "H", "A3404": "H", "AS1121": "H", "AS1063": "H", "MACS J2243.3-0935": "H", "A2163": "H",
    "A2254": "H", "A2744": "H", "PLCK G287.0+32.9": "H", "RXC J1314.4-2515": "H",
    "A2680": "cH", "A2693": "cH", "A2811": "cH", "A3186": "cH", "A3399": "cH", "PSZ1 G287.95-32.98": "cH",
    "A2496": "cH", "A2721": "cH", "AS0084": "cH", "GMBCG J357.91841-08.97978": "cH",
    "A0122": "cmH", "MCXC J0145.2-6033": "cmH",
    "RXC J0137.2-0912": "mH",
}
"""Halo type of each of the 23 halo sources (paper Table 1)."""

CONDITIONS = ("none", "type", "source")
"""What a generative model may be conditioned on."""

SPLITS = ("train", "all")
"""Which halos a generative model starts from: the paper's 18 training halos, or all 23."""


def select_halos(sources: Sequence[SourceCutouts], *, split: str = "train", exclude: Sequence[str] = ()) -> list[SourceCutouts]:
    """The halo sources a generative model trains on.

    Parameters
    ----------
    sources : sequence of SourceCutouts
        ``training.data.load_training_set`` output (both classes; non-halos are dropped).
    split : {"train", "all"}
        The paper's 18 training halos (the data's TRAIN split), or all 23 halos (for folds
        of the grouped protocol, which then ``exclude`` their test sources).
    exclude : sequence of str
        Source names to leave out (a fold's test sources). Every name must be a source of
        ``sources``; excluding a non-halo or a source outside ``split`` is allowed (it
        removes nothing), so a fold's whole test list can be passed.

    Returns
    -------
    list of SourceCutouts
        The halos left, in input order.

    Raises
    ------
    ValueError
        Unknown ``split``, a name in ``exclude`` that is no source, or no halo left.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    known = {s.name for s in sources}
    unknown = sorted(set(exclude) - known)
    if unknown:
        raise ValueError(f"cannot exclude {unknown}: no such source (known halos: "
                         f"{', '.join(sorted(s.name for s in sources if s.label == 1))})")
    halos = [s for s in sources if s.label == 1 and (split == "all" or s.split == "train") and s.name not in set(exclude)]
    if not halos:
        raise ValueError(f"no halo source left to train on (split={split!r}, {len(exclude)} excluded)")
    return halos


def band_clip_levels(x: np.ndarray) -> np.ndarray:
    """Each band's clip level: the median over images of the faintest surviving |pixel|, Jy/beam.

    The per-band form of ``training.data.median_clip_threshold``; generated samples are
    re-clipped at these levels (``reclip``) so that, like real clipped cut-outs, they are
    exactly zero below them. A band with no surviving pixel anywhere gets 0 (no re-clip).

    Parameters
    ----------
    x : numpy.ndarray
        (N, H, W, B) clipped cut-outs, Jy/beam.

    Returns
    -------
    numpy.ndarray
        (B,) float32 levels.
    """
    magnitude = np.abs(np.asarray(x, np.float32)).reshape(len(x), -1, x.shape[-1])
    faintest = np.where(magnitude > 0, magnitude, np.inf).min(axis=1)  # (N, B)
    levels = []
    for band in faintest.T:
        band = band[np.isfinite(band)]
        levels.append(np.median(band) if band.size else 0.0)
    return np.asarray(levels, np.float32)


def reclip(x: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Zero every pixel fainter than its band's clip level, as the survey's 3-sigma clip does (both signs survive).

    Parameters
    ----------
    x : numpy.ndarray
        (N, H, W, B) cut-outs, Jy/beam.
    levels : numpy.ndarray
        (B,) clip levels, Jy/beam.

    Returns
    -------
    numpy.ndarray
        float32 copy of ``x`` with |x| < level set to 0.
    """
    x = np.asarray(x, np.float32)
    return np.where(np.abs(x) < np.asarray(levels, np.float32), np.float32(0.0), x)


@dataclass(eq=False)
class HaloSet:
    """The real halo cut-outs of a generative model, with everything it stores beside its weights.

    Attributes
    ----------
    images : numpy.ndarray
        (N, 64, 64, 4) clipped central cut-outs, Jy/beam (one per source).
    names : tuple of str
        Source of each image.
    labels : numpy.ndarray
        (N,) int32 conditioning label of each image (0 for ``condition="none"``).
    condition : str
        ``"none"``, ``"type"`` or ``"source"``.
    vocabulary : tuple of str
        What label k means: ``HALO_TYPES``, the source names, or ``("halo",)``.
    normalisation : Normalisation
        ``log-minmax-sym``, fitted on these images at both ends of the brightness range.
    clip_levels : numpy.ndarray
        (4,) per-band clip levels for ``reclip``.
    excluded : tuple of str
        Sources the caller excluded.
    split : str
        ``"train"`` or ``"all"``.
    """

    images: np.ndarray
    names: tuple[str, ...]
    labels: np.ndarray
    condition: str
    vocabulary: tuple[str, ...]
    normalisation: Normalisation
    clip_levels: np.ndarray
    excluded: tuple[str, ...] = ()
    split: str = "train"
    label_weights: np.ndarray = field(init=False)

    def __post_init__(self):
        counts = np.bincount(self.labels, minlength=len(self.vocabulary)).astype(np.float64)
        self.label_weights = counts / counts.sum()

    @property
    def n_labels(self) -> int:
        """Size of the label vocabulary; 0 for an unconditional model."""
        return 0 if self.condition == "none" else len(self.vocabulary)

    def metadata(self) -> dict:
        """JSON-ready record of the data: sources, exclusions, labels, normalisation, clip levels."""
        return {
            "split": self.split, "excluded": list(self.excluded), "sources": list(self.names),
            "condition": self.condition, "vocabulary": list(self.vocabulary),
            "label_weights": [float(w) for w in self.label_weights],
            "normalisation": self.normalisation.to_dict(),
            "clip_levels_jy": {b: float(v) for b, v in zip(BAND_NAMES, self.clip_levels)},
        }


def halo_set(sources: Sequence[SourceCutouts], *, split: str = "train", exclude: Sequence[str] = (),
             condition: str = "none", zero_centred: bool = False) -> HaloSet:
    """Select the halos, label them and fit the generative normalisation on them.

    The normalisation is fitted on the images at both ends of the brightness augmentation
    (x 0.9 and x 1.4), so every augmented copy maps into [-1, 1].

    The paper's min-max puts 0 Jy/beam, the value of the ~86 % of pixels the 3-sigma clip
    zeroed, wherever the log range happens to put it (below -0.1 on our halos; tested).
    ``zero_centred`` widens the range to [-m, m], m the larger of |min| and max, so that
    it maps to exactly 0: a diffusion model's noise is centred on 0, and the background
    then needs no offset the network must learn for every noise level.

    Parameters
    ----------
    sources : sequence of SourceCutouts
        ``training.data.load_training_set`` output.
    split : {"train", "all"}
        See ``select_halos``.
    exclude : sequence of str
        Sources to leave out (see ``select_halos``).
    condition : {"none", "type", "source"}
        What the labels mean (module docstring).
    zero_centred : bool
        Symmetric range, so that a clipped (zero) pixel maps to 0 (see above).

    Returns
    -------
    HaloSet
        Images, labels and the fitted normalisation.
    """
    if condition not in CONDITIONS:
        raise ValueError(f"condition must be one of {CONDITIONS}, got {condition!r}")
    halos = select_halos(sources, split=split, exclude=exclude)
    names = tuple(s.name for s in halos)
    images = np.stack([s.centre for s in halos]).astype(np.float32)
    if condition == "type":
        missing = [n for n in names if n not in PAPER_HALO_TYPE]
        if missing:
            raise ValueError(f"no paper halo type for {missing}; use condition='source' or 'none'")
        vocabulary = HALO_TYPES
        labels = np.array([HALO_TYPES.index(PAPER_HALO_TYPE[n]) for n in names], np.int32)
    elif condition == "source":
        vocabulary, labels = names, np.arange(len(names), dtype=np.int32)
    else:
        vocabulary, labels = ("halo",), np.zeros(len(names), np.int32)
    extremes = np.concatenate([images * BRIGHTNESS_RANGE[0], images * BRIGHTNESS_RANGE[1]])
    norm = fit_normalisation(SampleSet(extremes, np.ones(len(extremes), int), np.array(names * 2),
                                       np.array(["centre"] * len(extremes))), kind="log")
    if zero_centred:
        bound = max(-norm.min, norm.max)
        norm = replace(norm, min=-bound, max=bound)
    return HaloSet(images, names, labels, condition, tuple(vocabulary), norm, band_clip_levels(images),
                   tuple(exclude), split)


class HaloBatches:
    """Endless classic-augmented batches of a ``HaloSet`` in [-1, 1], with their labels.

    Each batch draws sources uniformly (every halo counts the same, as in the paper's
    equal number of augmented copies per source), augments them in Jy/beam and applies the
    set's normalisation.

    Parameters
    ----------
    halos : HaloSet
        The images, labels and normalisation.
    batch_size : int
        Images per batch.
    seed : int, optional
        Seeds the draws and the augmentation.
    """

    def __init__(self, halos: HaloSet, batch_size: int, *, seed: int | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.halos, self.batch_size = halos, int(batch_size)
        self.rng = np.random.default_rng(seed)
        self.augmenter = Augmenter(halos.images, seed=None if seed is None else seed + 1)

    def draw(self) -> tuple[np.ndarray, np.ndarray]:
        """One batch: (batch_size, 64, 64, 4) float32 in [-1, 1] and (batch_size,) int32 labels."""
        index = self.rng.integers(0, len(self.halos.images), self.batch_size)
        x = self.halos.normalisation.apply(self.augmenter.draw(index))
        return np.clip(x, -1.0, 1.0).astype(np.float32), self.halos.labels[index]

    def __iter__(self):
        while True:
            yield self.draw()


def sample_labels(halos_meta: dict, n: int, *, seed: int | None = None) -> np.ndarray:
    """Labels for ``n`` generated images, drawn in the proportions of the training set.

    Parameters
    ----------
    halos_meta : dict
        ``HaloSet.metadata()`` as stored with a model (``label_weights``).
    n : int
        Labels to draw.
    seed : int, optional
        Seeds the draw.

    Returns
    -------
    numpy.ndarray
        (n,) int32 labels.
    """
    weights = np.asarray(halos_meta["label_weights"], np.float64)
    return np.random.default_rng(seed).choice(len(weights), size=n, p=weights / weights.sum()).astype(np.int32)


__all__ = ["HALO_TYPES", "PAPER_HALO_TYPE", "CONDITIONS", "SPLITS", "select_halos", "band_clip_levels", "reclip",
           "HaloSet", "halo_set", "HaloBatches", "sample_labels"]
