"""Mock-sky fields as extra training backgrounds: confusion blends the 46 real fields hold too few of.

Six of the mock demo's seven false candidates sit on blends: two or three 0.05-0.3 Jy point
sources within a few arcmin, which at 2-4.5' resolution look like diffuse emission centred
in a window (``results/mock-false-candidates.md``).
The blind-scan classifier meets such blends only where the 46 real fields happen to hold
them, and through mining. These fields add more, as the science issue asks ("hard
negatives ... from real fields (and from the mock sky)"). Measured under the blind protocol
(``results/blind-cnn-log-mock10``, ``docs/blind-variants.md``), ten of them did not improve
the classifier on real fields, so the shipped recipe does not use them:

- they come from a mock sky of another seed (``MOCK_TRAINING_SEED``) than the demo, the
  checks and the tests (seed 0), so no sky any measurement scans is trained on;
- that sky has no seeded halos: a window of it is never a halo unless one is injected;
- each field goes through exactly what a real one does (``training.fields.make_field``:
  the shared clip, usable windows, compact sources), and its pool holds injected halos
  as well as empty, compact and mined windows, so the mock sky's texture is in both
  classes and cannot itself tell them apart;
- they only ever join the **training** fields of a fold (and of ``halo-train ship``):
  never early stopping, threshold calibration or any measurement, which stay real.
"""

from __future__ import annotations

import numpy as np

from survey.defaults import DEFAULT_WINDOW_ORDER
from survey.images.discovery import GleamSource
from survey.images.mock import MockSky, MockSource
from survey.sky.fields import FieldRequest
from training.fields import Field, make_field

MOCK_TRAINING_SEED = 1
"""Seed of the training mock sky: not the demo's and the checks' seed 0."""

MOCK_FIELD_WIDTH_DEG = 2.8
"""Side of a mock field: its usable windows (all four bands' cut-outs inside) cover about
3 deg2, as a real field's do outside its exclusions (2.8-3.4 deg2)."""

MOCK_DEC_RANGE_DEG = (-70.0, -10.0)
"""Declinations of the field centres: GLEAM's southern sky."""

GOLDEN_FRACTION = (np.sqrt(5.0) - 1.0) / 2.0
GOLDEN_ANGLE_DEG = 360.0 * (1.0 - GOLDEN_FRACTION)
"""Steps of the centres' sequence in sin(dec) and RA: consecutive fields land far apart."""


def mock_field_centres(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(ra, dec) in degrees of the first ``n`` field centres: a low-discrepancy sequence over ``MOCK_DEC_RANGE_DEG``.

    The i-th centre does not depend on ``n``, so the fields of a run with fewer are the
    first of a run with more.

    Parameters
    ----------
    n : int
        Number of fields.

    Returns
    -------
    ra_deg, dec_deg : numpy.ndarray
    """
    i = np.arange(n)
    low, high = np.sin(np.radians(MOCK_DEC_RANGE_DEG))
    uniform = ((i + 0.5) * GOLDEN_FRACTION) % 1.0  # equal-area in sin(dec)
    return (i * GOLDEN_ANGLE_DEG) % 360.0, np.degrees(np.arcsin(low + (high - low) * uniform))


def mock_fields(n: int, *, seed: int = MOCK_TRAINING_SEED, width_deg: float = MOCK_FIELD_WIDTH_DEG,
                window_order: int = DEFAULT_WINDOW_ORDER) -> list[Field]:
    """``n`` non-halo fields of a halo-free mock sky, built as real fields are (module docstring).

    Parameters
    ----------
    n : int
        Number of fields (0 gives none).
    seed : int
        Mock sky seed; must not be 0, the sky every check scans.
    width_deg : float
        Side of each field.
    window_order : int
        HEALPix order of the windows (the survey's default).

    Returns
    -------
    list of Field
        Named ``mock<seed>-<i>``, label 0, each its own overlap group (negative numbers, so
        never one of the real fields' groups).
    """
    if n and seed == 0:
        raise ValueError("mock training fields must not come from seed 0: the demo and every mock check scan that sky")
    source = MockSource(MockSky(seed=seed, halo_density_per_deg2=0.0))
    no_clusters = (np.empty(0), np.empty(0))
    fields = []
    for i, (ra, dec) in enumerate(zip(*mock_field_centres(n))):
        name = f"mock{seed}-{i:02d}"
        images = source.read_field(FieldRequest(name, float(ra), float(dec), width_deg))
        gleam = GleamSource(name=name, label=0, split=None, images=images)
        fields.append(make_field(gleam, group=-(i + 1), clusters=no_clusters, window_order=window_order))
    return fields


__all__ = ["MOCK_TRAINING_SEED", "MOCK_FIELD_WIDTH_DEG", "mock_field_centres", "mock_fields"]
