"""Which injected halos the blind-scan goal speaks of, and the rings of offsets scored around them.

Light on purpose (no TensorFlow): the protocol (``training.blind``), its report
(``training.blind_report``) and ``halo-train compare`` all read completeness rows with it.
"""

from __future__ import annotations

from collections.abc import Mapping

GOAL_MIN_FLUX_150MHZ_JY = 0.4
"""The goal's halos are at least this bright at 150 MHz ..."""

GOAL_MAX_R_E_ARCMIN = 3.0
"""... and at most this large (e-folding radius)."""

OFFSET_RINGS_ARCMIN = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0)
"""Rings around an injected halo in which the best window score is recorded: score against offset."""


def in_goal_cells(row: Mapping) -> bool:
    """True for a completeness row (or grid cell) of a halo the goal counts.

    The grid stores its fluxes and sizes as floats, so the limits get a little slack.

    >>> in_goal_cells({"flux_150mhz_jy": 0.4, "r_e_arcmin": 3.0}), in_goal_cells({"flux_150mhz_jy": 0.2, "r_e_arcmin": 1.0})
    (True, False)
    """
    return row["flux_150mhz_jy"] > GOAL_MIN_FLUX_150MHZ_JY - 1e-9 and row["r_e_arcmin"] <= GOAL_MAX_R_E_ARCMIN + 1e-9


__all__ = ["GOAL_MIN_FLUX_150MHZ_JY", "GOAL_MAX_R_E_ARCMIN", "OFFSET_RINGS_ARCMIN", "in_goal_cells"]
