"""The local readers on the real catalogue files, and how a bad file is reported (survey.catalogs.readers, .registry, .load)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import ascii, fits
from astropy.table import Table

from survey.catalogs.load import catalog_command, load_catalog
from survey.catalogs.table import CATALOG_COLUMNS, filter_footprint
from survey.exceptions import CatalogError
from tests.survey.fake_services import (
    _isolated_network_state,  # noqa: F401  (autouse fixture)
)


def test_psz2_text_and_fits_agree(catalogs_dir: Path):
    text = load_catalog("psz2", path=catalogs_dir / "psz2.dat")
    union = load_catalog("psz2", path=catalogs_dir / "psz2_union.fits")
    assert len(text) == len(union) == 1653  # data README
    assert text["name"].tolist() == union["name"].tolist()
    separation = SkyCoord(text["ra"], text["dec"], unit="deg").separation(SkyCoord(union["ra"], union["dec"], unit="deg"))
    assert separation.arcsec.max() < 0.01  # the text keeps 7 decimals of a degree (0.00036")
    both = np.isfinite(text["z"]) & np.isfinite(union["z"])
    np.testing.assert_allclose(text["z"][both], union["z"][both], atol=1e-6)


def test_psz2_alternate_names(catalogs_dir: Path):
    table = load_catalog("psz2")
    row = table[table["name"] == "PSZ2 G008.94-81.22"][0]
    assert "MCXC J0014.3-3023" in row["alt_names"].split(";")


def test_mgcls_keeps_both_bullet_rows(catalogs_dir: Path):
    table = load_catalog("mgcls")
    assert len(table) == 116
    bullet = table[np.isin(table["name"], ["Bullet", "MCXC J0658.5-5556"])]
    assert len(bullet) == 2
    assert "MCXC J0658.5-5556" in bullet["alt_names"][bullet["name"] == "Bullet"][0]
    assert "Bullet" in bullet["alt_names"][bullet["name"] == "MCXC J0658.5-5556"][0]
    # 115 distinct clusters: the Bullet's two rows (about 1' apart) are the only pair within 2'.
    self_pairs = _pairs_within(table, radius_arcmin=2.0)
    assert self_pairs == {frozenset(("Bullet", "MCXC J0658.5-5556"))}
    assert len(table) - len(self_pairs) == 115


def _pairs_within(table: Table, *, radius_arcmin: float) -> set[frozenset[str]]:
    coords = SkyCoord(table["ra"], table["dec"], unit="deg")
    i, j, _, _ = coords.search_around_sky(coords, radius_arcmin / 60.0 * coords.ra.unit)
    return {frozenset((table["name"][a], table["name"][b])) for a, b in zip(i, j) if a < b}


def test_mcxc_and_cosmos(catalogs_dir: Path):
    mcxc = load_catalog("mcxc")
    assert len(mcxc) == 1743
    assert all(n.startswith("MCXC J") for n in mcxc["name"])
    cosmos = load_catalog("COSMOS")
    assert len(cosmos) == 129
    assert all(n.startswith("COSMOS CL J") for n in cosmos["name"])
    assert (cosmos["catalog"] == "cosmos").all()


def test_missing_file_names_it_and_the_fix(tmp_path):
    with pytest.raises(CatalogError, match=r"nope\.fits: MCXC FITS table not found\. Set HALO_DATA_DIR"):
        load_catalog("mcxc", path=tmp_path / "nope.fits")


def test_default_path_follows_halo_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HALO_DATA_DIR", str(tmp_path))
    with pytest.raises(CatalogError, match=str(tmp_path / "catalogs" / "mgcls_table1.dat")):
        load_catalog("mgcls")


def test_unparseable_file_is_a_catalog_error(tmp_path):
    bad = tmp_path / "mcxc.fits"
    bad.write_bytes(b"this is not FITS at all")
    with pytest.raises(CatalogError, match=r"mcxc\.fits: could not be read as the MCXC FITS table"):
        load_catalog("mcxc", path=bad)


def test_fits_without_needed_columns(tmp_path):
    path = tmp_path / "mcxc.fits"
    fits.BinTableHDU(Table({"MCXC": ["J0000.1+0816"], "RAdeg": [0.03]})).writeto(path)
    with pytest.raises(CatalogError, match="missing column.*DEdeg, z"):
        load_catalog("mcxc", path=path)


def test_psz2_text_needs_its_readme(tmp_path):
    dat = tmp_path / "psz2.dat"
    dat.write_text("   1 PSZ2 G000.04+45.13\n")
    with pytest.raises(CatalogError, match="no CDS ReadMe beside it"):
        load_catalog("psz2", path=dat)


def test_unknown_catalogue():
    with pytest.raises(CatalogError, match="unknown catalogue 'abell'; expected one of psz2, mgcls, mcxc, cosmos"):
        load_catalog("abell")


def test_catalog_command_with_footprint(catalogs_dir: Path):
    csv_text = catalog_command("mgcls", footprint="gleam", fmt="csv")
    rows = ascii.read(csv_text, format="csv")
    assert len(rows) == len(filter_footprint(load_catalog("mgcls")))
    assert 0 < len(rows) < 116


@pytest.mark.parametrize("fmt", ["csv", "fits", "vot"])
def test_any_table_of_positions_becomes_targets(tmp_path, fmt):
    from survey.catalogs.readers import read_positions

    table = Table({"Name": ["A2744", "my field"], "RAJ2000": [3.586, 10.0], "DEJ2000": [-30.4, -20.0], "z": [0.308, -1]})
    path = tmp_path / f"targets.{fmt}"
    table.write(path, format={"csv": "ascii.csv", "fits": "fits", "vot": "votable"}[fmt])
    back = read_positions(path)
    assert back.colnames == list(CATALOG_COLUMNS)
    assert back["name"].tolist() == ["A2744", "my field"] and back["catalog"][0] == path.name
    np.testing.assert_allclose(back["ra"], [3.586, 10.0])
    assert back["z"][0] == pytest.approx(0.308) and np.isnan(back["z"][1])


def test_a_positions_table_without_ra_or_with_a_bad_row_names_the_file(tmp_path):
    from survey.catalogs.readers import read_positions

    path = tmp_path / "t.csv"
    Table({"name": ["x"], "lon": [1.0], "dec": [2.0]}).write(path, format="ascii.csv")
    with pytest.raises(CatalogError, match=r"t\.csv: no RA column \(looked for ra, ra_deg"):
        read_positions(path)
    Table({"ra": [1.0, 400.0], "dec": [2.0, 3.0]}).write(path, format="ascii.csv", overwrite=True)
    with pytest.raises(CatalogError, match=r"row 1"):
        read_positions(path)
