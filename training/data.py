"""Training data: per-source cut-outs through the survey's own model-input builder, grouped for honest folds.

Split by *source* before any augmentation: every sample below belongs to one source and
carries that source's overlap group, so folds can be built on sources and groups alone.
Class 1 = the halo sources' central cut-outs; class 0 = the non-halo sources' central
cut-outs plus "empty" side cut-outs taken from the halo fields away from the centre
(paper section 4.1). Augmentation is ``training.augment``'s, drawn on the fly per batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from survey.images.discovery import GleamSource, scan_directory
from survey.model.modelcard import sha256_file
from survey.model.normalisation import Normalisation
from survey.model.preprocess import IMAGE_COLUMN, channels_last, clip_field, cut_windows
from survey.sky.bands import BAND_NAMES
from survey.sky.groups import DEFAULT_GROUP_RADIUS_DEG, overlap_groups

SIDE_OFFSET_DEG = 0.8
"""Distance of the side cut-outs from the field centre.

0.8 deg keeps every band's cut-out inside the 300-px field (170-231 MHz: 103 px from the
centre, cut-out edge at 135 < 150 px) while the nearest edge of the widest (72-103 MHz)
cut-out stays 0.3 deg from the centre: beyond the 15' extent of the halos in this set.
"""

N_SIDE = 8
"""Side cut-outs per halo field: four edges and four corners of a ring of SIDE_OFFSET_DEG."""


@dataclass(frozen=True, eq=False)
class SourceCutouts:
    """Everything training needs from one source.

    Attributes
    ----------
    name, label, split : str, int, str | None
        From the data layer (label 1 = halo).
    group : int
        Overlap group (survey.sky.groups): sources of one group never straddle folds.
    ra_deg, dec_deg : float
        Field centre.
    centre : numpy.ndarray
        (64, 64, 4) clipped central cut-out in Jy/beam, bands in BANDS order.
    sides : numpy.ndarray
        (N_SIDE, 64, 64, 4) side cut-outs (class 0); empty for non-halo sources.
    files : dict
        band -> {"path", "sha256"} for the manifest and model card.
    noise : numpy.ndarray
        (4,) float32 noise sigma of each band of the field (Jy/beam), for the noise-unit scaling.
    """

    name: str
    label: int
    split: str | None
    group: int
    ra_deg: float
    dec_deg: float
    centre: np.ndarray
    sides: np.ndarray
    files: dict = field(default_factory=dict)
    noise: np.ndarray = field(default_factory=lambda: np.full(len(BAND_NAMES), np.nan, np.float32))


def side_positions(ra_deg: float, dec_deg: float, *, offset_deg: float = SIDE_OFFSET_DEG, n: int = N_SIDE) -> list[tuple[float, float]]:
    """Positions on a ring around the field centre (flat-sky offsets: RA offset / cos Dec; fine below |Dec| 80 deg).

    Parameters
    ----------
    ra_deg, dec_deg : float
        Field centre, ICRS degrees.
    offset_deg : float
        Radius of the ring in degrees.
    n : int
        Positions, evenly spaced in angle starting due north.

    Returns
    -------
    list of tuple of float
        ``(ra_deg, dec_deg)`` of each position, RA wrapped into [0, 360).
    """
    angles = np.radians(np.arange(n) * 360.0 / n)
    dra = offset_deg * np.sin(angles) / np.cos(np.radians(dec_deg))
    ddec = offset_deg * np.cos(angles)
    return [(float((ra_deg + a) % 360.0), float(dec_deg + d)) for a, d in zip(dra, ddec)]


def source_cutouts(source: GleamSource, *, group: int, with_sides: bool) -> SourceCutouts:
    """The centre (and side) cut-outs of one source, through the survey's own input builder.

    ``clip_field`` and ``cut_windows`` are what a survey tile goes through; the cut-outs are
    kept in clipped Jy/beam (normalisation is fitted later, on each training fold) and with
    the band axis last, the layout of the Keras models and of the augmentation below.

    Parameters
    ----------
    source : GleamSource
        A labelled source with its four band images (``scan_directory``).
    group : int
        The source's overlap group (``overlap_groups``).
    with_sides : bool
        Also cut the ``N_SIDE`` side cut-outs (done for halo sources).

    Returns
    -------
    SourceCutouts
        Centre and side cut-outs with the source's label, split, group, centre and file
        hashes.

    Raises
    ------
    ValueError
        The source has no class label.
    BadInputError
        A band is missing or cannot be clipped.
    """
    if source.label is None:
        raise ValueError(f"source {source.name!r} has no class label: put it under a *_DATA_0 or *_DATA_1 folder")
    field = clip_field(source.images, key=source.name)
    ra, dec = source.centre_radec
    positions = [(ra, dec), *(side_positions(ra, dec) if with_sides else [])]
    stack = channels_last(cut_windows(field, *np.array(positions).T)[IMAGE_COLUMN])
    files = {b: {"path": str(p), "sha256": sha256_file(p)} for b, p in source.files.items()}
    noise = np.array([field.clipped[b].noise.sigma for b in BAND_NAMES], np.float32)
    return SourceCutouts(source.name, source.label, source.split, group, ra, dec, stack[0], stack[1:], files, noise)


def load_training_set(directory: str | Path, *, group_radius_deg: float = DEFAULT_GROUP_RADIUS_DEG) -> list[SourceCutouts]:
    """All labelled sources under ``directory`` with their cut-outs and overlap groups.

    Raises ValueError naming the directory when it has no usable source or lacks a class.
    """
    scan = scan_directory(directory)
    for problem in scan.problems:
        print(f"warning: skipped {problem.name}: {problem.message}")
    sources = [s for s in scan.sources if s.label is not None]
    if not sources:
        raise ValueError(f"{directory}: no labelled sources found (expected folders like TRAIN_DATA_1 / TRAIN_DATA_0)")
    labels = {s.label for s in sources}
    if labels != {0, 1}:
        raise ValueError(f"{directory}: class {({0, 1} - labels).pop()} is empty; training needs halo (1) and non-halo (0) sources")
    positions = np.array([s.centre_radec for s in sources])
    groups = overlap_groups(positions[:, 0], positions[:, 1], radius_deg=group_radius_deg)
    return [source_cutouts(s, group=int(g), with_sides=s.label == 1) for s, g in zip(sources, groups)]


def write_manifest(sources: list[SourceCutouts], path: str | Path, *, root: str | Path | None = None) -> Path:
    """JSON manifest: source, class, split, group, centre, files with SHA-256 (paths relative to ``root``).

    Parameters
    ----------
    sources : list of SourceCutouts
        The training set.
    path : path-like
        JSON file to write; its folder is created.
    root : path-like, optional
        File paths under it are written relative to it; others, and all when None, as
        stored.

    Returns
    -------
    Path
        ``path``.
    """
    root = Path(root) if root else None

    def rel(p: str) -> str:
        return str(Path(p).relative_to(root)) if root and Path(p).is_relative_to(root) else p

    rows = [
        {"name": s.name, "label": s.label, "split": s.split, "group": s.group, "ra_deg": s.ra_deg, "dec_deg": s.dec_deg,
         "n_side_cutouts": len(s.sides), "files": {b: {"path": rel(f["path"]), "sha256": f["sha256"]} for b, f in s.files.items()}}
        for s in sources
    ]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"version": 1, "bands": list(BAND_NAMES), "sources": rows}, indent=1))
    return path


# --------------------------------------------------------------------------------------
# Samples: base cut-outs (class 1 centres; class 0 centres + halo side cut-outs)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class SampleSet:
    """Base (un-augmented) samples of a set of sources, with the source each came from."""

    x: np.ndarray  # (N, 64, 64, 4) clipped Jy/beam
    y: np.ndarray  # (N,) int labels
    source: np.ndarray  # (N,) source names
    kind: np.ndarray  # (N,) "centre" | "side" (and training.samples' kinds)
    noise: np.ndarray | None = None  # (N, 4) each band's noise sigma where the sample was cut, Jy/beam

    def __len__(self) -> int:
        return len(self.y)

    def noise_of(self, index: np.ndarray | slice = slice(None)) -> np.ndarray | None:
        """The noise of samples ``index`` shaped (n, 1, 1, 4) to broadcast against their cut-outs, or None."""
        return None if self.noise is None else self.noise[index][:, None, None, :]


def samples_of(sources: list[SourceCutouts], *, include_sides: bool = True) -> SampleSet:
    """Stack the base samples of ``sources`` (side cut-outs are class 0)."""
    xs, ys, names, kinds, noise = [], [], [], [], []
    for s in sources:
        xs.append(s.centre[None]), ys.append(s.label), names.append(s.name), kinds.append("centre"), noise.append(s.noise)
        if include_sides and len(s.sides):
            xs.append(s.sides)
            ys.extend([0] * len(s.sides)), names.extend([s.name] * len(s.sides)), kinds.extend(["side"] * len(s.sides))
            noise.extend([s.noise] * len(s.sides))
    return SampleSet(np.concatenate(xs).astype(np.float32), np.array(ys), np.array(names), np.array(kinds),
                     np.array(noise, np.float32))


NORMALISATIONS = ("minmax", "log", "snr-log")
"""Classifier input scalings: the paper's global min-max, signed-log then min-max, or the same in noise units."""


def fit_normalisation(samples: SampleSet, *, kind: str = "minmax") -> Normalisation:
    """Fit the input scaling on the *training* samples only (never on a test fold).

    ``minmax`` is the paper's (appendix A): one global [min, max] over all images and bands.
    On GLEAM that range is set by a few bright point sources (up to ~36 Jy/beam) while the
    diffuse emission a halo classifier needs sits near the clip level (~0.05 Jy/beam), so
    most unclipped pixels share a sliver of the input range (``results/input_scaling.py``
    measures it). ``log`` applies the signed log scaling
    first, with the median clip threshold as its scale, before the global min-max to
    [-1, 1]: faint structure then spans a useful part of the input range. ``snr-log``
    divides each band by its field's noise first (``survey.model.normalisation``), so the
    clip level is the same in every field.
    """
    if kind == "minmax":
        return Normalisation.fit(samples.x, kind="minmax")
    if kind == "log":
        return Normalisation.fit(samples.x, kind="log-minmax-sym", log_scale_value=median_clip_threshold(samples.x))
    if kind == "snr-log":
        if samples.noise is None:
            raise ValueError("the snr-log scaling needs each sample's band noise (SampleSet.noise)")
        return Normalisation.fit(samples.x, kind="snr-log-sym", noise=samples.noise_of())
    raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {kind!r}")


def median_clip_threshold(x: np.ndarray) -> float:
    """Median over images and bands of the smallest surviving |pixel|: the clip level, Jy/beam.

    Clipping zeroes everything below the band's threshold, so the faintest non-zero pixel
    of a clipped band image is its threshold; images or bands with no surviving pixel are
    skipped.
    """
    magnitude = np.abs(np.asarray(x, np.float32)).reshape(len(x), -1, x.shape[-1])
    faintest = np.where(magnitude > 0, magnitude, np.inf).min(axis=1)
    faintest = faintest[np.isfinite(faintest)]
    if faintest.size == 0:
        raise ValueError("cannot fit a log normalisation: every training cut-out is empty")
    return float(np.median(faintest))
