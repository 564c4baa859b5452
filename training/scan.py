"""Blind scans of real fields in memory: window scores, candidates after non-maximum suppression, false-candidate rates, completeness.

The same steps as a survey's blind scan (``survey.run``), without Ray or catalogues, so
that the honest protocol can scan its held-out fields many times: every usable window of a
field is cut by the survey's input builder (normalised with the model's card
normalisation), scored, thresholded, and merged by the survey's own non-maximum
suppression (``survey.run.candidates.merge_detections``): one candidate per group of
neighbouring detections, at its peak. A candidate outside the field's exclusions (15' from
any catalogued cluster or halo source) is a false candidate.

Completeness injects halos into a field (``survey.model.inject``) and asks two questions:
does the window centred on the halo reach the threshold (``targets`` mode), and does a
blind scan put a candidate within ``RECOVERY_RADIUS_ARCMIN`` of it?
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from survey.images.halos import Halo
from survey.model.inject import inject
from survey.model.normalisation import Normalisation
from survey.model.preprocess import IMAGE_COLUMN, ClippedField, clip_field, cut_windows
from survey.run.candidates import merge_detections
from survey.sky import healpix
from survey.sky.geometry import angular_distance_deg
from survey.sky.tiling import window_neighbours
from training.fields import Field, near_any

Scorer = Callable[[np.ndarray], np.ndarray]
"""Halo probability of a batch of model inputs: normalised (N, 4, 64, 64) band planes."""

RECOVERY_RADIUS_ARCMIN = 5.0
"""A blind scan recovers a halo when a candidate lies this close (the issue's criterion)."""

SCAN_RADIUS_ARCMIN = 20.0
"""Windows scanned around an injected halo: far enough that any detection group reaching
within the recovery radius lies wholly inside."""

CHUNK = 1024
"""Windows cut and scored at a time (64 MiB of band planes)."""

KERAS_BATCH = 256
"""Batch of a Keras scorer's predict calls."""


def keras_scorer(model) -> Scorer:
    """A Keras classifier as a scorer: band planes moved channels-last, softmax column 1."""
    from survey.model.preprocess import channels_last

    def score(planes: np.ndarray) -> np.ndarray:
        n = len(planes)
        if n == 0:
            return np.zeros(0, np.float32)
        # Every batch the same shape, so Keras traces its predict function once, not per size.
        padded = np.zeros((-(-n // KERAS_BATCH) * KERAS_BATCH, *planes.shape[1:]), np.float32)
        padded[:n] = planes
        probs = model.predict(channels_last(padded), batch_size=KERAS_BATCH, verbose=0)
        return np.asarray(probs)[:n, 1].astype(np.float32)

    return score


def onnx_scorer(classifier) -> Scorer:
    """An ``OnnxClassifier`` as a scorer: it takes band planes, as its card says."""
    return classifier.predict


def score_positions(clipped: ClippedField, ra_deg: npt.ArrayLike, dec_deg: npt.ArrayLike, *, scorer: Scorer,
                    normalisation: Normalisation) -> np.ndarray:
    """Halo probability of windows at the given positions of one field, cut and scored in chunks.

    Parameters
    ----------
    clipped : ClippedField
        The field's clipped bands.
    ra_deg, dec_deg : array_like
        Window centres, degrees.
    scorer : Scorer
        The model.
    normalisation : Normalisation
        The model's input scaling (its card's).

    Returns
    -------
    numpy.ndarray
        float32 scores, one per position.
    """
    ra, dec = np.atleast_1d(np.asarray(ra_deg, float)), np.atleast_1d(np.asarray(dec_deg, float))
    scores = np.zeros(ra.size, np.float32)
    for start in range(0, ra.size, CHUNK):
        part = slice(start, start + CHUNK)
        planes = cut_windows(clipped, ra[part], dec[part], normalisation=normalisation)[IMAGE_COLUMN]
        scores[part] = scorer(planes)
    return scores


def score_field(field: Field, *, scorer: Scorer, normalisation: Normalisation) -> np.ndarray:
    """Scores of every usable window of a field (``field.ipix`` order).

    Parameters
    ----------
    field : Field
        The field.
    scorer : Scorer
        The model.
    normalisation : Normalisation
        Its input scaling.

    Returns
    -------
    numpy.ndarray
        float32, one per window.
    """
    return score_positions(field.clipped, field.ra_win, field.dec_win, scorer=scorer, normalisation=normalisation)


@dataclass(frozen=True, eq=False)
class FieldScan:
    """A field's window scores, for candidates at any threshold.

    Attributes
    ----------
    field : Field
        The field.
    scores : numpy.ndarray
        One per usable window (``field.ipix``).
    counted : numpy.ndarray
        Windows that count towards the rate: outside the exclusions, and not already held
        by an earlier field of the same scan (overlapping fields count their sky once).
    """

    field: Field
    scores: np.ndarray
    counted: np.ndarray

    @property
    def area_deg2(self) -> float:
        """Sky area of the counted windows."""
        return float(self.counted.sum() * healpix.pixel_area_deg2(self.field.window_order))


def candidate_peaks(ipix: np.ndarray, scores: np.ndarray, *, threshold: float, order: int) -> np.ndarray:
    """Indices (into ``ipix``) of the candidates a scan gives at ``threshold``: NMS peaks of the detections.

    Parameters
    ----------
    ipix : numpy.ndarray
        Window indices at ``order``.
    scores : numpy.ndarray
        Their scores.
    threshold : float
        Detection threshold (``score >= threshold``).
    order : int
        HEALPix order of the windows.

    Returns
    -------
    numpy.ndarray
        int64 indices of the peaks.
    """
    detected = np.flatnonzero(scores >= np.float32(threshold))
    if detected.size == 0:
        return detected
    peaks, _ = merge_detections(ipix[detected], scores[detected], order=order)
    return detected[peaks]


def candidate_count_curve(ipix: np.ndarray, scores: np.ndarray, counted: np.ndarray, *, order: int
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Counted candidates at every threshold at once: windows added in descending score, groups joined as they touch.

    At threshold t the detections are the windows scoring at least t, and the candidates are
    their groups of HEALPix neighbours, each at its highest window (ties: the lower ``ipix``,
    as ``merge_detections``). Adding windows from the best down, a union-find keeps each
    group's peak; the count of groups whose peak is counted changes only when a window
    starts a group or joins groups. One pass gives the count after each window, so any
    number of thresholds costs what one does.

    Parameters
    ----------
    ipix : numpy.ndarray
        Window indices at ``order``.
    scores : numpy.ndarray
        Their scores.
    counted : numpy.ndarray
        Which windows count as false candidates when they are a group's peak.
    order : int
        HEALPix order of the windows.

    Returns
    -------
    scores_desc : numpy.ndarray
        float32 scores in the order windows were added (descending).
    counts : numpy.ndarray
        int64 counted candidates once each of those windows is added: at threshold t the
        count is ``counts[k]`` for the last k with ``scores_desc[k] >= t`` (0 before the first).
    """
    n = ipix.size
    rank = np.lexsort((ipix, -np.asarray(scores, np.float64)))
    position = np.empty(n, np.int64)
    position[rank] = np.arange(n)
    neighbours = window_neighbours(ipix, order=order)
    index_of = {int(p): i for i, p in enumerate(ipix.tolist())}
    parent = np.arange(n)
    peak = np.arange(n)  # each root's peak window (the first added)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    added = np.zeros(n, bool)
    counts = np.zeros(n, np.int64)
    count = 0
    for step, i in enumerate(rank.tolist()):
        added[i] = True
        root = i
        count += int(counted[i])
        for q in neighbours[i]:
            j = index_of.get(int(q), -1)
            if j < 0 or not added[j]:
                continue
            other = find(j)
            if other == root:
                continue
            # Two groups meet: the one whose peak was added first keeps it.
            keep, drop = (root, other) if position[peak[root]] < position[peak[other]] else (other, root)
            count -= int(counted[peak[drop]])
            parent[drop] = keep
            root = keep
        counts[step] = count
    return np.asarray(scores, np.float32)[rank], counts


def count_at(curve: tuple[np.ndarray, np.ndarray], threshold: float) -> int:
    """The count a ``candidate_count_curve`` gives at ``threshold``."""
    scores_desc, counts = curve
    k = int(np.searchsorted(-scores_desc, -np.float32(threshold), side="right"))
    return int(counts[k - 1]) if k else 0


def false_candidates(scans: Sequence[FieldScan], threshold: float) -> tuple[int, float]:
    """False candidates at ``threshold`` over some scans, and the area they were counted on (deg2).

    Non-maximum suppression runs over each field's windows; a candidate counts when its
    peak window is a counted one.
    """
    count = 0
    for scan in scans:
        peaks = candidate_peaks(scan.field.ipix, scan.scores, threshold=threshold, order=scan.field.window_order)
        count += int(np.count_nonzero(scan.counted[peaks]))
    return count, float(sum(s.area_deg2 for s in scans))


def scan_fields(fields: Sequence[Field], *, scorer: Scorer, normalisation: Normalisation) -> list[FieldScan]:
    """Every usable window of ``fields`` scored; overlapping fields count their shared windows once.

    Parameters
    ----------
    fields : sequence of Field
        The fields, in the order their shared windows are assigned (first one keeps them).
    scorer : Scorer
        The model.
    normalisation : Normalisation
        Its input scaling.

    Returns
    -------
    list of FieldScan
    """
    seen: set[int] = set()
    scans = []
    for field in fields:
        scores = score_field(field, scorer=scorer, normalisation=normalisation)
        fresh = np.array([int(p) not in seen for p in field.ipix.tolist()], bool)
        seen.update(field.ipix.tolist())
        scans.append(FieldScan(field, scores, fresh & ~field.excluded))
    return scans


def count_curves(scans: Sequence[FieldScan]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each scan's ``candidate_count_curve``."""
    return [candidate_count_curve(s.field.ipix, s.scores, s.counted, order=s.field.window_order) for s in scans]


def rate_curve(scans: Sequence[FieldScan], thresholds: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray, float]:
    """False candidates and their rate per deg2 at each threshold.

    Returns
    -------
    counts : numpy.ndarray
        int false candidates per threshold.
    rates : numpy.ndarray
        counts / area.
    area_deg2 : float
        The counted area.
    """
    curves = count_curves(scans)
    counts = np.array([sum(count_at(c, float(t)) for c in curves) for t in np.asarray(thresholds, float)])
    area = float(sum(s.area_deg2 for s in scans))
    return counts, counts / max(area, 1e-12), area


def threshold_for_rate(scans: Sequence[FieldScan], *, target_per_deg2: float, floor: float = 0.5) -> float:
    """The lowest threshold whose false-candidate rate on ``scans`` is at most ``target_per_deg2``.

    Candidates' peak scores are the only thresholds at which the count changes, so the
    search runs over them (and just above each): the result is exact on these scans. With
    ``area`` deg2 scanned, at most ``floor(target * area)`` false candidates are allowed.

    Parameters
    ----------
    scans : sequence of FieldScan
        Scans of fields the model never trained on.
    target_per_deg2 : float
        The false-candidate rate allowed.
    floor : float
        Lowest threshold returned.

    Returns
    -------
    float
        The threshold (in [floor, 1)).
    """
    curves = count_curves(scans)
    scores = np.concatenate([c[0] for c in curves] + [np.zeros(0, np.float32)])
    levels = np.unique(np.concatenate([[floor], np.nextafter(scores[scores >= floor], np.float32(2))]).astype(np.float32))
    area = float(sum(s.area_deg2 for s in scans))
    allowed = np.array([sum(count_at(c, float(level)) for c in curves) <= target_per_deg2 * area for level in levels])
    # Non-maximum suppression can split a group as the threshold rises, so the count is not
    # quite monotonic: take the lowest level above which every level keeps to the target.
    bad = np.flatnonzero(~allowed)
    if bad.size == 0:
        return float(levels[0])
    if bad[-1] + 1 < levels.size:
        return float(levels[bad[-1] + 1])
    return float(np.nextafter(np.float32(1.0), np.float32(0.0)))


# --------------------------------------------------------------------------------------
# Completeness
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Recovery:
    """What scans saw of one injected halo.

    Attributes
    ----------
    halo : Halo
        The injected halo.
    field : str
        The background field.
    target_score : float
        Score of the window centred on the halo (``targets`` mode).
    ipix, scores : numpy.ndarray
        Windows within ``SCAN_RADIUS_ARCMIN`` and their scores after injection (blind scan).
    distance_arcmin : numpy.ndarray
        Each window's distance from the halo.
    order : int
        HEALPix order of the windows.
    """

    halo: Halo
    field: str
    target_score: float
    ipix: np.ndarray
    scores: np.ndarray
    distance_arcmin: np.ndarray
    order: int

    def recovered(self, threshold: float) -> bool:
        """A blind scan at ``threshold`` puts a candidate within ``RECOVERY_RADIUS_ARCMIN`` of the halo."""
        peaks = candidate_peaks(self.ipix, self.scores, threshold=threshold, order=self.order)
        return bool(np.any(self.distance_arcmin[peaks] <= RECOVERY_RADIUS_ARCMIN))


def place_halos(field: Field, count: int, rng: np.random.Generator, *, min_separation_deg: float = 0.75
                ) -> list[tuple[float, float]]:
    """Up to ``count`` positions among the field's counted windows, at least ``min_separation_deg`` apart.

    Parameters
    ----------
    field : Field
        The background.
    count : int
        Positions wanted.
    rng : numpy.random.Generator
        Source of the draws.
    min_separation_deg : float
        Halos injected together stay this far apart, so their scans do not see each other.

    Returns
    -------
    list of (float, float)
        (ra, dec) positions, degrees; windows within the scan radius of the field's
        exclusions are avoided, so every scanned window could give a false candidate too.
    """
    allowed = np.flatnonzero(~field.excluded)
    order = rng.permutation(allowed)
    chosen: list[tuple[float, float]] = []
    for at in order:
        ra, dec = float(field.ra_win[at]), float(field.dec_win[at])
        if chosen and near_any(ra, dec, *np.array(chosen).T, radius_arcmin=min_separation_deg * 60)[0]:
            continue
        chosen.append((ra, dec))
        if len(chosen) == count:
            break
    return chosen


def recover(field: Field, halos: Sequence[Halo], *, scorer: Scorer, normalisation: Normalisation, seed: int
            ) -> list[Recovery]:
    """Inject ``halos`` into a field together and scan around each (targets and blind).

    Parameters
    ----------
    field : Field
        The background (held out from the model's training).
    halos : sequence of Halo
        Halos far enough apart not to see each other (``place_halos``).
    scorer : Scorer
        The model.
    normalisation : Normalisation
        Its input scaling.
    seed : int
        Seeds the restored noise.

    Returns
    -------
    list of Recovery
        One per halo.
    """
    injected = clip_field(inject(field.clipped.images, list(halos), seed=seed), key=f"{field.name} injected")
    out = []
    for halo in halos:
        distance = angular_distance_deg(field.ra_win, field.dec_win, halo.ra_deg, halo.dec_deg) * 60.0
        near = distance <= SCAN_RADIUS_ARCMIN
        positions_ra = np.concatenate([[halo.ra_deg], field.ra_win[near]])
        positions_dec = np.concatenate([[halo.dec_deg], field.dec_win[near]])
        scores = score_positions(injected, positions_ra, positions_dec, scorer=scorer, normalisation=normalisation)
        out.append(Recovery(halo, field.name, float(scores[0]), field.ipix[near], scores[1:], distance[near],
                            field.window_order))
    return out
