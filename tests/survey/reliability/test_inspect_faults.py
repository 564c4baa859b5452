"""``halo-survey inspect`` on bad bands: a row or a named skip, never a traceback."""

from __future__ import annotations

import pytest

from tests.survey.reliability.conftest import Snapshot, run_cli, write_bad_set


@pytest.mark.parametrize(("kind", "rc", "expected"), [
    ("all_zero_band", 1, "unusable 103-134 MHz image"),
    ("all_nan_band", 1, "unusable 72-103 MHz image"),
    ("truncated", 1, "is truncated"),
])
def test_a_band_inspect_cannot_use_is_named_not_a_traceback(tmp_path, kind, rc, expected):
    files = write_bad_set(tmp_path / "d", "abell_0001", kind, ra_deg=10.0, dec_deg=-30.0)
    snapshot = Snapshot(tmp_path)
    result = run_cli(["inspect", tmp_path / "d"])
    assert result.rc == rc and "Traceback" not in result.text
    assert "1 source(s) skipped" in result.out and expected in result.out
    assert any(path.name in result.out for path in files.values())
    snapshot.assert_unchanged()


def test_infinite_pixels_are_reported_as_the_survey_sees_them(tmp_path):
    write_bad_set(tmp_path, "abell_0002", "inf_pixels", ra_deg=10.0, dec_deg=-30.0)
    result = run_cli(["inspect", tmp_path])
    row = next(line for line in result.out.splitlines() if line.startswith("A0002"))
    assert result.rc == 0 and "170-231:inf" in row


def test_blank_blocks_are_reported(tmp_path):
    import numpy as np
    from astropy.io import fits

    files = write_bad_set(tmp_path, "abell_0003", "good", ra_deg=10.0, dec_deg=-30.0)
    with fits.open(files["139-170"], mode="update") as hdul:
        hdul[0].data[:10, :] = np.nan
    row = next(line for line in run_cli(["inspect", tmp_path]).out.splitlines() if line.startswith("A0003"))
    assert "139-170:blank" in row and "139-170:truncated" in row
