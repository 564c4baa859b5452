"""Overlap groups keep overlapping fields together for honest evaluation."""

from __future__ import annotations

import numpy as np

from survey.images.discovery import scan_directory
from survey.sky.groups import DEFAULT_GROUP_RADIUS_DEG, group_members, overlap_groups


def test_groups_are_transitive_and_wrap_around_ra_zero():
    groups = overlap_groups([359.9, 0.1, 0.9, 180.0], [0.0, 0.0, 0.3, 0.0], radius_deg=1.0)  # 3rd: 1.04 deg from 1st
    assert groups.tolist() == [0, 0, 0, 1]


def test_real_overlaps_of_the_data_readme(gleam_dir):
    sources = scan_directory(gleam_dir).sources
    positions = np.array([s.centre_radec for s in sources])
    groups = overlap_groups(positions[:, 0], positions[:, 1])
    members = {frozenset(m) for m in group_members([s.name for s in sources], groups)}
    assert members == {
        frozenset({"ORC 2", "ORC 3"}),
        frozenset({"A2744", "A2751"}),
        frozenset({"ORC 5", "A0141", "A0122"}),
        frozenset({"A0550", "A3365"}),
        frozenset({"A2680", "A2693"}),
        frozenset({"A2811", "AS0084"}),
    }
    assert groups.max() + 1 == 46 - 7
    assert 2.3 < DEFAULT_GROUP_RADIUS_DEG < 2.4
