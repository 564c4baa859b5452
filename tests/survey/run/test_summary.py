"""What a run did, for people (survey.run.summary): mock halos found and false candidates, the closing lines."""

from __future__ import annotations

import numpy as np
import pytest

from survey.images.mock import MockHalo, MockSky, MockSource
from survey.run.finish import FinishResult
from survey.run.manifest import RunManifest
from survey.run.summary import RunSummary, format_summary, mock_recovery
from tests.survey.run.helpers import survey_args


def test_a_mock_scan_counts_halos_found_and_candidates_near_no_halo(model, tmp_path):
    sky = MockSky(seed=5, halo_density_per_deg2=0.0,
                  halos=(MockHalo(100.0, -40.0, z=0.1, size_mpc=1.0, flux_150mhz_jy=1.0),
                         MockHalo(101.5, -40.0, z=0.1, size_mpc=1.0, flux_150mhz_jy=1.0)))
    args = survey_args(model, tmp_path, region="cone:100.7,-40,2")
    found = FinishResult(3, np.array([100.01, 100.0, 105.0]), np.array([-40.0, -40.02, -41.0]), True)
    (injected, recovered, false), radius = mock_recovery(MockSource(sky), args, found)
    assert (injected, recovered, false) == (2, 1, 1) and radius == pytest.approx(6.871, abs=1e-3)
    manifest = RunManifest(run_id="r", mode="scan", arguments={}, provenance={"source": "mock:5"}, tiles_planned=1)
    text = format_summary(RunSummary(str(tmp_path), manifest, 3, 12.5, [], (injected, recovered, false), radius))
    assert "1 of 2 injected halos recovered" in text and "1 candidates near no injected halo (0.080 per deg2)" in text


def test_real_images_and_targets_runs_have_no_truth(model, tmp_path):
    found = FinishResult(0, np.zeros(0), np.zeros(0), True)
    assert mock_recovery(MockSource(MockSky()), survey_args(model, tmp_path, mode="targets"), found)[0] is None
