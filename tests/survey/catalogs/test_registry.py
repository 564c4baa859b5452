"""survey.catalogs.registry: local readers on the real files, VizieR against a fake server, cross-matching."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import ascii, fits, votable
from astropy.table import Table
from hypothesis import given, settings
from hypothesis import strategies as st

from survey.catalogs import registry as catalogs
from survey.catalogs.registry import (
    CATALOG_COLUMNS,
    catalog_command,
    crossmatch,
    fetch_vizier,
    filter_footprint,
    format_catalog,
    load_catalog,
    make_catalog_table,
    nearest_clusters,
    parse_vizier_votable,
    vizier_payload,
)
from survey.exceptions import BadInputError, CatalogError, RemoteServiceError
from survey.images.naming import display_name, parse_band_filename
from tests.survey.fake_services import (
    FakeServer,
    _isolated_network_state,  # noqa: F401  (autouse fixture)
    closed_port_url,
)


def _table(names, ra, dec, z=None, catalog="demo"):
    return make_catalog_table(name=names, ra_deg=ra, dec_deg=dec, z=z if z is not None else [0.1] * len(names), catalog=catalog)


# --------------------------------------------------------------------------------------
# The common form
# --------------------------------------------------------------------------------------


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
    alts = catalogs.join_alt_names(["J0014.3-3023", ""], ["ABELL 2744", "x"], ["J0014.3-3023", "x"], exclude=["ABELL 2744", "x"])
    assert alts == ["MCXC J0014.3-3023", ""]


# --------------------------------------------------------------------------------------
# Local files (real data)
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Footprint (real-data fact)
# --------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------
# Cross-match
# --------------------------------------------------------------------------------------


def test_crossmatch_picks_the_nearest_within_radius():
    left = _table(["a", "b", "c"], [10.0, 10.0, 200.0], [0.0, 45.0, -60.0])
    right = _table(["far", "near", "other"], [10.0 + 3 / 60, 10.0 + 1 / 60, 10.0], [0.0, 0.0, 45.0 + 4.9 / 60])
    match = crossmatch(left, right, radius_arcmin=5.0)
    assert match.index.tolist() == [1, 2, -1]
    np.testing.assert_allclose(match.separation_arcmin[:2], [1.0, 4.9], atol=1e-6)
    assert np.isnan(match.separation_arcmin[2])
    assert match.matched.tolist() == [True, True, False]


def test_crossmatch_radius_is_inclusive_and_strict_outside():
    left = _table(["a"], [0.0], [0.0])
    right = _table(["x"], [0.0], [2.0 / 60])
    assert crossmatch(left, right, radius_arcmin=2.0 + 1e-9).index[0] == 0
    assert crossmatch(left, right, radius_arcmin=1.999).index[0] == -1


def test_crossmatch_against_an_empty_catalogue():
    empty = make_catalog_table(name=[], ra_deg=[], dec_deg=[], z=[], catalog="empty")
    match = crossmatch(_table(["a"], [1.0], [1.0]), empty, radius_arcmin=5)
    assert match.index.tolist() == [-1]


@pytest.mark.parametrize("radius", [0.0, -1.0, float("nan"), float("inf"), 10801.0])
def test_crossmatch_rejects_bad_radius(radius):
    with pytest.raises(BadInputError, match="radius_arcmin"):
        crossmatch(_table(["a"], [1.0], [1.0]), _table(["b"], [1.0], [1.0]), radius_arcmin=radius)


def test_crossmatch_needs_positions():
    with pytest.raises(BadInputError, match="right table: has no 'dec' column"):
        crossmatch(_table(["a"], [1.0], [1.0]), Table({"ra": [1.0]}), radius_arcmin=1)


@settings(max_examples=50, deadline=None)
@given(
    ra=st.floats(0, 359.99), dec=st.floats(-89.9, 89.9),
    dra=st.floats(-0.5, 0.5), ddec=st.floats(-0.5, 0.5),
)
def test_kernel_separation_matches_astropy(ra, dec, dra, ddec):
    other_dec = float(np.clip(dec + ddec, -90, 90))
    left = Table({"ra": [ra], "dec": [dec]})
    right = Table({"ra": [(ra + dra) % 360], "dec": [other_dec]})
    expected = SkyCoord(ra, dec, unit="deg").separation(SkyCoord((ra + dra) % 360, other_dec, unit="deg")).arcmin
    match = crossmatch(left, right, radius_arcmin=120.0)
    if expected < 119.0:
        assert match.index[0] == 0
        assert match.separation_arcmin[0] == pytest.approx(expected, abs=1e-6)


def test_nearest_clusters_columns():
    psz = _table(["P1", "P2"], [10.0, 20.0], [0.0, 0.0], z=[0.2, -1.0])
    mcxc = _table(["M1"], [20.0], [1.0 / 60], z=[0.05])
    out = nearest_clusters(np.array([10.0, 20.0, 300.0]), np.array([0.0, 0.0, 0.0]), {"psz2": psz, "mcxc": mcxc},
                           radius_arcmin=5.0)
    assert sorted(out) == sorted(["psz2_name", "psz2_sep_arcmin", "psz2_z", "mcxc_name", "mcxc_sep_arcmin", "mcxc_z"])
    assert out["psz2_name"].tolist() == ["P1", "P2", ""]
    assert out["psz2_z"][0] == pytest.approx(0.2) and np.isnan(out["psz2_z"][1:]).all()
    assert out["mcxc_name"].tolist() == ["", "M1", ""]
    assert out["mcxc_sep_arcmin"][1] == pytest.approx(1.0, abs=1e-6)


def test_nearest_clusters_rejects_mismatched_positions():
    with pytest.raises(BadInputError, match="one length"):
        nearest_clusters([1.0, 2.0], [1.0], {}, radius_arcmin=1)


def _paper_halo_positions(gleam_dir: Path) -> dict[str, tuple[float, float]]:
    """Field centres (CRVAL1/2) of the 23 halo sources, one band file each, read directly."""
    positions: dict[str, tuple[float, float]] = {}
    for folder in ("TRAIN_DATA_1", "TEST_DATA_1"):
        for path in sorted((gleam_dir / folder).iterdir()):
            parsed = parse_band_filename(path.name)
            if parsed is None or display_name(parsed.source_key) in positions:
                continue
            header = fits.getheader(path)
            positions[display_name(parsed.source_key)] = (header["CRVAL1"], header["CRVAL2"])
    return positions


def test_paper_halos_against_psz2(gleam_dir: Path, catalogs_dir: Path):
    halos = _paper_halo_positions(gleam_dir)
    assert len(halos) == 23
    names = list(halos)
    ra, dec = np.array([halos[n] for n in names]).T
    found = nearest_clusters(ra, dec, {"psz2": load_catalog("psz2")}, radius_arcmin=5.0)
    by_name = {n: (found["psz2_name"][i], found["psz2_sep_arcmin"][i]) for i, n in enumerate(names)}
    # Data README: 18 of 23 have a PSZ2 counterpart within 5'. The README's separations use
    # the paper's Table 1 positions; the file centres sit within 3.6" (0.06') of those.
    assert sum(bool(match) for match, _ in by_name.values()) == 18
    assert {n for n, (match, _) in by_name.items() if not match} == {"A2680", "A2693", "AS0084", "A0122", "RXC J0137.2-0912"}
    assert by_name["A2744"][0] == "PSZ2 G008.94-81.22"
    assert by_name["A2744"][1] == pytest.approx(1.29, abs=0.06)
    assert by_name["A3399"][0] == "PSZ2 G257.32-22.19"
    assert by_name["A3399"][1] == pytest.approx(0.01, abs=0.06)


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------


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


def test_catalog_command_with_footprint(catalogs_dir: Path):
    csv_text = catalog_command("mgcls", footprint="gleam", fmt="csv")
    rows = ascii.read(csv_text, format="csv")
    assert len(rows) == len(filter_footprint(load_catalog("mgcls")))
    assert 0 < len(rows) < 116


# --------------------------------------------------------------------------------------
# VizieR: payload (offline), fetch against a fake server, parse
# --------------------------------------------------------------------------------------


def test_payload_is_built_without_network():
    payload = vizier_payload("mcxc")
    assert "-source=J/A+A/534/A109/mcxc" in payload.splitlines()
    assert "-out.max=unlimited" in payload
    assert "-out.add=_RAJ2000,_DEJ2000" in payload


def _vizier_votable(tables: dict[str, Table], ucds: dict[str, str]) -> bytes:
    """A VOTable shaped like VizieR's: named tables, fields with UCDs."""
    document = None
    for name, table in tables.items():
        single = votable.from_table(table)
        element = single.get_first_table()
        element.name = name
        for field in element.fields:
            field.ucd = ucds.get(field.name)
        if document is None:
            document = single
        else:
            document.resources[0].tables.append(element)
    buffer = io.BytesIO()
    document.to_xml(buffer)
    return buffer.getvalue()


PSZ2_UCDS = {
    "Name": "meta.id;meta.main", "RAdeg": "pos.eq.ra;meta.main", "DEdeg": "pos.eq.dec;meta.main",
    "z": "src.redshift", "MCXC": "meta.id", "_RAJ2000": "pos.eq.ra", "_DEJ2000": "pos.eq.dec",
}


def _psz2_answer() -> bytes:
    psz2 = Table({
        "_RAJ2000": [3.5759, 99.3252], "_DEJ2000": [-30.3729, -48.4836],
        "Name": ["PSZ2 G008.94-81.22", "PSZ2 G257.32-22.19"], "RAdeg": [3.5759, 99.3252], "DEdeg": [-30.3729, -48.4836],
        "z": [0.3066, -1.0], "MCXC": ["J0014.3-3023", ""],
    })
    other = Table({"Name": ["PSZ2 G000.04+45.13"], "RAdeg": [229.19], "DEdeg": [-1.02]})
    return _vizier_votable({"J/A+A/594/A27/psz2": psz2, "J/A+A/594/A27/pszpws": other}, PSZ2_UCDS)


@pytest.fixture
def vizier():
    answer = _psz2_answer()
    server = FakeServer({"/viz-bin/votable": lambda seen: (200, "text/xml", answer)})
    yield server
    server.stop()


def test_fetch_vizier_parses_and_caches(vizier):
    table = fetch_vizier("psz2", server=vizier.url, timeout_s=2.0, retries=1)
    assert table.colnames == list(CATALOG_COLUMNS)
    assert table["name"].tolist() == ["PSZ2 G008.94-81.22", "PSZ2 G257.32-22.19"]  # the psz2 table, not pszpws
    assert table["z"][0] == pytest.approx(0.3066) and np.isnan(table["z"][1])
    assert table["alt_names"].tolist() == ["MCXC J0014.3-3023", ""]
    assert vizier.seen[0].method == "POST"
    assert b"-source=J/A+A/594/A27/psz2" in vizier.seen[0].body
    vizier.stop()
    again = fetch_vizier("psz2", server=vizier.url, timeout_s=1.0, retries=1)
    assert again["name"].tolist() == table["name"].tolist()
    assert len(vizier.seen) == 1


def test_fetch_vizier_retries_after_an_outage(vizier):
    vizier.fail_next(1, status=502)
    table = fetch_vizier("psz2", server=vizier.url, timeout_s=2.0, retries=2, backoff_s=0.0)
    assert len(table) == 2 and len(vizier.seen) == 2


def test_unreachable_vizier_fails_fast():
    start = time.monotonic()
    with pytest.raises(RemoteServiceError, match=r"(?s)VizieR: catalogue J/A\+A/534/A109/mcxc.*load_catalog\('mcxc'\) reads"):
        fetch_vizier("mcxc", server=closed_port_url(), timeout_s=1.0, retries=1)
    assert time.monotonic() - start < 3.0


def test_vizier_error_answer_is_reported():
    error = (b'<?xml version="1.0"?><VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">'
             b'<RESOURCE><INFO name="QUERY_STATUS" value="ERROR">Unknown catalogue</INFO></RESOURCE></VOTABLE>')
    server = FakeServer({"/viz-bin/votable": lambda seen: (200, "text/xml", error)})
    try:
        with pytest.raises(RemoteServiceError, match="unusable.*VizieR says: Unknown catalogue"):
            fetch_vizier("psz2", server=server.url, timeout_s=2.0, retries=1)
    finally:
        server.stop()


def test_parser_picks_the_groups_table_and_requires_an_id():
    groups = Table({"ID": ["COSMOS CL J100043.1+020637"], "_RAJ2000": [150.179], "_DEJ2000": [2.1128], "z": [0.361]})
    members = Table({"ID": ["gal 1"], "_RAJ2000": [150.1], "_DEJ2000": [2.1], "z": [0.36]})
    ucds = {"ID": "meta.id;meta.main", "z": "src.redshift"}
    answer = _vizier_votable({"J/ApJ/742/125/members": members, "J/ApJ/742/125/groups": groups}, ucds)
    table = parse_vizier_votable(answer, name="cosmos")
    assert table["name"].tolist() == ["COSMOS CL J100043.1+020637"]
    no_id = _vizier_votable({"J/ApJ/742/125/groups": groups}, {"z": "src.redshift"})
    with pytest.raises(CatalogError, match="no column with UCD 'meta.id;meta.main'"):
        parse_vizier_votable(no_id, name="cosmos")


def test_parser_rejects_non_votable():
    with pytest.raises(CatalogError, match="not a VOTable"):
        parse_vizier_votable(b"<html>maintenance</html>", name="psz2")


def test_load_catalog_online_goes_to_vizier(monkeypatch):
    calls = []
    monkeypatch.setattr(catalogs, "fetch_vizier", lambda name: calls.append(name) or _demo())
    load_catalog("PSZ2", online=True)
    assert calls == ["psz2"]


def test_online_and_path_together_are_refused(tmp_path):
    with pytest.raises(BadInputError, match="online=True; choose the local file or VizieR"):
        load_catalog("psz2", path=tmp_path / "psz2.dat", online=True)
