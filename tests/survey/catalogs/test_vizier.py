"""VizieR (survey.catalogs.vizier): the payload offline, fetching against a fake server on 127.0.0.1, parsing."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from astropy.io import votable
from astropy.table import Table

from survey.catalogs import load as catalog_load
from survey.catalogs.load import load_catalog
from survey.catalogs.table import CATALOG_COLUMNS, make_catalog_table
from survey.catalogs.vizier import fetch_vizier, parse_vizier_votable, vizier_payload
from survey.exceptions import BadInputError, CatalogError, RemoteServiceError
from tests.survey.fake_services import (
    FakeServer,
    _isolated_network_state,  # noqa: F401  (autouse fixture)
    closed_port_url,
)


def _demo() -> Table:
    return make_catalog_table(name=["Abell 13", "J0013.6-1930"], ra_deg=[3.3842, 3.41], dec_deg=[-19.501, -19.5],
                              z=[0.094, -1], catalog="demo", alt_names=["MCXC J0013.6-1930", ""])


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
    monkeypatch.setattr(catalog_load, "fetch_vizier", lambda name: calls.append(name) or _demo())
    load_catalog("PSZ2", online=True)
    assert calls == ["psz2"]


def test_online_and_path_together_are_refused(tmp_path):
    with pytest.raises(BadInputError, match="online=True; choose the local file or VizieR"):
        load_catalog("psz2", path=tmp_path / "psz2.dat", online=True)
