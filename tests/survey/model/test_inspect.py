"""`halo-survey inspect` on the real data."""

from __future__ import annotations

from survey.cli import main


def test_inspect_lists_46_sources_by_split_and_class(gleam_dir, capsys):
    assert main(["inspect", str(gleam_dir)]) == 0
    out = capsys.readouterr().out
    assert "46 sources (test/class 0: 5, test/class 1: 5, train/class 0: 18, train/class 1: 18)" in out
    row = next(line for line in out.splitlines() if line.startswith("A2254 "))
    assert "1/train" in row and "103-134:unclipped" in row
    assert len([line for line in out.splitlines() if "/train" in line or "/test" in line]) == 46


def test_inspect_reports_bad_source_and_goes_on(tmp_path, capsys):
    from survey.testing import write_source_set

    write_source_set(tmp_path, "abell_0001", ra_deg=10, dec_deg=-30, shape=(60, 60))
    paths = write_source_set(tmp_path, "abell_0002", ra_deg=20, dec_deg=-30, shape=(60, 60))
    paths["170-231"].write_text("broken")
    assert main(["inspect", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "A0001" in out and "1 source(s) skipped" in out and "abell_0002_Gleam170-231_clipped.fits" in out


def test_inspect_missing_directory_is_one_line_error(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "nope")]) == 2
    assert "is not a directory" in capsys.readouterr().err
