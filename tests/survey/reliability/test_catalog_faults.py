"""Catalogue faults: files cut short or empty are refused by their row counts, naming the file.

The real catalogues are copied from ``../shared/data`` into a temporary ``HALO_DATA_DIR``
at run time and spoiled there (nothing of them is kept in the repository).
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from survey.catalogs.load import load_catalog
from survey.exceptions import CatalogError
from survey.run.finish import load_match_catalogs
from tests.survey.reliability.conftest import Snapshot, run_cli, scan_argv

pytestmark = pytest.mark.realdata


@pytest.fixture
def data_dir(catalogs_dir, tmp_path, monkeypatch) -> Path:
    """A copy of the catalogues in a fresh HALO_DATA_DIR."""
    root = tmp_path / "data"
    shutil.copytree(catalogs_dir, root / "catalogs")
    monkeypatch.setenv("HALO_DATA_DIR", str(root))
    return root / "catalogs"


def _drop_last_lines(path: Path, count: int) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-count]))


def test_psz2_cut_at_a_line_is_refused_by_its_readme(data_dir, capsys):
    _drop_last_lines(data_dir / "psz2.dat", 40)
    result = run_cli(["catalog", "psz2"])
    assert result.rc == 2 and "Traceback" not in result.text
    assert f"{data_dir / 'psz2.dat'}: 1613 rows, but its ReadMe" in result.err and "says 1653" in result.err


def test_psz2_cut_inside_a_line_is_named(data_dir):
    path = data_dir / "psz2.dat"
    path.write_bytes(path.read_bytes()[:-500])
    with pytest.raises(CatalogError, match=str(path).replace("+", r"\+")):
        load_catalog("psz2")


@pytest.mark.parametrize(("name", "filename", "rows"), [
    ("mgcls", "mgcls_table1.dat", 116), ("cosmos", "cosmos_xray_groups.csv", 129)])
def test_a_text_catalogue_cut_short_is_refused_by_its_release_count(data_dir, name, filename, rows):
    _drop_last_lines(data_dir / filename, 10)
    with pytest.raises(CatalogError, match=rf"{filename}: {rows - 10} rows, but the {name.upper()} release .* has {rows}"):
        load_catalog(name)


def test_a_fits_catalogue_cut_short_is_named(data_dir):
    path = data_dir / "mcxc.fits"
    path.write_bytes(path.read_bytes()[: 2880 * 60])
    with pytest.raises(CatalogError, match=r"mcxc\.fits"):
        load_catalog("mcxc")


def test_an_empty_catalogue_file_is_named(data_dir):
    (data_dir / "cosmos_xray_groups.csv").write_bytes(b"")
    with pytest.raises(CatalogError, match=r"cosmos_xray_groups\.csv"):
        load_catalog("cosmos")


def test_targets_from_a_truncated_catalogue_stop_before_anything_runs(data_dir, model, tmp_path):
    _drop_last_lines(data_dir / "mgcls_table1.dat", 5)
    snapshot = Snapshot(tmp_path)
    result = run_cli(scan_argv(model, tmp_path / "out", "--catalog", "mgcls", "--source", "mock", mode="targets"))
    assert result.rc == 2 and "mgcls_table1.dat: 111 rows" in result.err and "Traceback" not in result.text
    snapshot.assert_unchanged()
    assert not any((tmp_path / "out").rglob("*"))  # at most the empty directory the writability probe made


def test_a_truncated_match_catalogue_is_left_out_with_a_warning_naming_it(data_dir, caplog):
    (data_dir / "mcxc.fits").write_bytes((data_dir / "mcxc.fits").read_bytes()[:100])
    with caplog.at_level(logging.WARNING, logger="survey.run.finish"):
        loaded = load_match_catalogs(("mcxc", "cosmos"), online=False)
    assert set(loaded) == {"cosmos"} and "no mcxc cross-match" in caplog.text and "mcxc.fits" in caplog.text
