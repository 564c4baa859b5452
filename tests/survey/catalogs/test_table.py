"""The common table form, the footprint filter and the text output (survey.catalogs.table)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from astropy.io import ascii
from astropy.table import Table

from survey.catalogs import table as catalog_table
from survey.catalogs.load import load_catalog
from survey.catalogs.table import CATALOG_COLUMNS, filter_footprint, format_catalog, make_catalog_table
from survey.catalogs.vizier import parse_vizier_votable
from survey.exceptions import BadInputError, CatalogError
from tests.survey.fake_services import (
    _isolated_network_state,  # noqa: F401  (autouse fixture)
    )


def _table(names, ra, dec, z=None, catalog="demo"):
    return make_catalog_table(name=names, ra_deg=ra, dec_deg=dec, z=z if z is not None else [0.1] * len(names), catalog=catalog)


def test_common_form_columns_and_missing_redshift():
    table = make_catalog_table(name=[" A ", "B"], ra_deg=[1.0, 2.0], dec_deg=[0.0, -1.0], z=[-1.0, np.nan],
                               catalog="demo", alt_names=["x;y", ""])
    assert table.colnames == list(CATALOG_COLUMNS)
    assert table["name"].tolist() == ["A", "B"]
    assert np.isnan(table["z"]).all()
    assert table["ra"].unit == "deg" and table["catalog"][0] == "demo"


def test_bad_position_names_the_row():
    with pytest.raises(CatalogError, match=r"demo: row 1 \('B'\) has RA=400.0"):
        make_catalog_table(name=["A", "B"], ra_deg=[1.0, 400.0], dec_deg=[0.0, 0.0], z=[0, 0], catalog="demo")


def test_alt_names_deduplicate_and_prefix_mcxc_ids():
    alts = catalog_table.join_alt_names(["J0014.3-3023", ""], ["ABELL 2744", "x"], ["J0014.3-3023", "x"], exclude=["ABELL 2744", "x"])
    assert alts == ["MCXC J0014.3-3023", ""]


def test_psz2_in_gleam_footprint(catalogs_dir: Path):
    psz2 = load_catalog("psz2")
    inside = filter_footprint(psz2, mask_magellanic=False)
    assert len(inside) == 1182  # data README: Dec < +30 deg and |b| > 10 deg
    assert (inside["dec"] < 30).all()
    masked = filter_footprint(psz2)
    assert set(masked["name"]) <= set(inside["name"])


def test_unknown_footprint():
    with pytest.raises(BadInputError, match="unknown footprint 'nvss'"):
        filter_footprint(_table(["a"], [1.0], [0.0]), footprint="nvss")


def _demo() -> Table:
    return make_catalog_table(name=["Abell 13", "J0013.6-1930"], ra_deg=[3.3842, 3.41], dec_deg=[-19.501, -19.5],
                              z=[0.094, -1], catalog="demo", alt_names=["MCXC J0013.6-1930", ""])


def test_csv_round_trip():
    text = format_catalog(_demo(), "csv")
    back = ascii.read(text, format="csv")
    assert back["name"].tolist() == ["Abell 13", "J0013.6-1930"]
    assert back["ra"][0] == pytest.approx(3.3842)


def test_votable_round_trip_through_the_vizier_parser():
    text = format_catalog(_demo(), "votable")
    assert text.startswith("<?xml")
    back = parse_vizier_votable(text.encode(), name="mgcls")
    assert back["name"].tolist() == ["Abell 13", "MCXC J0013.6-1930"]
    np.testing.assert_allclose(back["ra"], [3.3842, 3.41])
    assert np.isnan(back["z"][1])


def test_aligned_table_lists_every_row():
    lines = format_catalog(_demo(), "table").splitlines()
    assert lines[0].split()[:4] == ["name", "ra", "dec", "z"]
    assert len(lines) == 3 + 2  # header, units, rule, two rows
    assert "3.38420" in lines[3]


def test_unknown_format():
    with pytest.raises(BadInputError, match="unknown format 'json'"):
        format_catalog(_demo(), "json")
