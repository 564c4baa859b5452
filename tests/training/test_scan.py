"""Blind scans in memory (training.scan): the counting shortcut is the survey's NMS, thresholds keep to their rate."""

from __future__ import annotations

import numpy as np
import pytest

from survey.sky import healpix
from training.scan import candidate_count_curve, candidate_peaks, count_at


def window_disc(radius_deg: float = 1.0) -> np.ndarray:
    return healpix.query_disc(10, ra_deg=30.0, dec_deg=-30.0, radius_deg=radius_deg, inclusive=False)


@pytest.mark.parametrize("seed", range(6))
def test_the_count_curve_is_the_survey_nms_at_every_threshold_ties_included(seed):
    rng = np.random.default_rng(seed)
    ipix = window_disc()
    scores = (rng.random(ipix.size) ** 8).astype(np.float32)
    scores[rng.random(ipix.size) < 0.3] = np.float32(0.5)  # ties, broken by the lower ipix as the survey does
    counted = rng.random(ipix.size) < 0.8
    curve = candidate_count_curve(ipix, scores, counted, order=10)
    for threshold in (0.0, 0.1, 0.3, 0.5, float(np.nextafter(np.float32(0.5), np.float32(1))), 0.7, 0.9, 0.99, 1.0):
        peaks = candidate_peaks(ipix, scores, threshold=threshold, order=10)
        assert count_at(curve, threshold) == int(counted[peaks].sum()), threshold


def test_a_single_bright_group_is_one_candidate_at_its_peak():
    ipix = window_disc(0.3)
    ra, dec = healpix.pix2ang(10, ipix)
    scores = np.exp(-((ra - 30.0) ** 2 + (dec + 30.0) ** 2) / 0.01).astype(np.float32)  # one smooth bump
    peaks = candidate_peaks(ipix, scores, threshold=0.2, order=10)
    assert peaks.size == 1 and scores[peaks[0]] == scores.max()
    curve = candidate_count_curve(ipix, scores, np.ones(ipix.size, bool), order=10)
    assert count_at(curve, 0.2) == 1 and count_at(curve, 2.0) == 0
