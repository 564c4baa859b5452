"""VizieR: build the request, fetch it, parse the answer, each a function of its own.

As astroquery's vizier does: ``vizier_payload`` builds the request without touching the
network, ``fetch_vizier`` gets the bytes through ``survey.remote`` (cache, timeout,
retries), and ``parse_vizier_votable`` only parses.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping

import astropy.units as u
import numpy as np
from astropy.io import votable
from astropy.io.votable.exceptions import VOWarning
from astropy.table import Table

from survey import remote
from survey.catalogs.registry import CatalogSpec, catalog_spec, default_catalog_path
from survey.catalogs.table import as_float, as_strings, join_alt_names, make_catalog_table, mcxc_style
from survey.exceptions import CatalogError

VIZIER_COLUMNS = ("**", "_RAJ2000", "_DEJ2000")
"""All columns, plus VizieR's computed J2000 decimal-degree positions."""


def vizier_payload(name: str, *, row_limit: int = -1) -> str:
    """The VizieR query body for catalogue ``name``; touches no network.

    Built by astroquery's ``Vizier.get_catalogs_async(..., get_query_payload=True)`` so
    it stays what astroquery would send.

    >>> print(vizier_payload("psz2").splitlines()[0])
    -source=J/A+A/594/A27/psz2
    """
    from astroquery.vizier import VizierClass

    viz = VizierClass(columns=list(VIZIER_COLUMNS), row_limit=row_limit)
    return viz.get_catalogs_async(catalog_spec(name).vizier_source, get_query_payload=True)


def vizier_url(server: str | None = None) -> str:
    """The VOTable endpoint of a VizieR server.

    ``server`` is a host name (``"vizier.cds.unistra.fr"``, https) or a URL with a scheme
    (``"http://127.0.0.1:8080"``, for tests or a local mirror); default
    ``astroquery.vizier.conf.server``.

    >>> vizier_url("vizier.cds.unistra.fr"), vizier_url("http://127.0.0.1:8080/")
    ('https://vizier.cds.unistra.fr/viz-bin/votable', 'http://127.0.0.1:8080/viz-bin/votable')
    """
    if server is None:
        from astroquery.vizier import conf as vizier_conf

        server = vizier_conf.server
    base = server if "://" in server else f"https://{server}"
    return f"{base.rstrip('/')}/viz-bin/votable"


def fetch_vizier(
    name: str,
    *,
    server: str | None = None,
    timeout_s: float | None = None,
    retries: int | None = None,
    backoff_s: float = remote.BACKOFF_S,
    use_cache: bool = True,
) -> Table:
    """Catalogue ``name`` from VizieR in the common form, through the on-disk cache.

    Timeout and attempts default to ``survey.config.conf``; a cached answer younger than
    ``conf.cache_days`` is used without touching the network.

    Parameters
    ----------
    name : str
        Catalogue key (psz2, mgcls, mcxc, cosmos), case-insensitive.
    server : str, optional
        VizieR host name or URL with a scheme (see ``vizier_url``); default
        ``astroquery.vizier.conf.server``.
    timeout_s : float, optional
        Seconds each attempt may take; default ``conf.timeout``.
    retries : int, optional
        Attempts before giving up; default ``conf.retries``.
    backoff_s : float
        First pause between attempts in seconds; it doubles after each failure.
    use_cache : bool
        Read and write the on-disk cache; False always downloads and stores nothing.

    Returns
    -------
    astropy.table.Table
        The catalogue in the common form, with ``meta["source"]`` (the URL asked),
        ``meta["vizier"]`` (the VizieR source) and ``meta["reference"]``.

    Raises
    ------
    CatalogError
        ``name`` is not a known catalogue.
    RemoteServiceError
        VizieR cannot be reached within the attempts, or its answer does not parse into
        the catalogue.
    """
    spec = catalog_spec(name)
    url = vizier_url(server)
    payload = vizier_payload(spec.key)
    request = remote.RemoteRequest("VizieR", url, {"payload": payload}, label=f"catalogue {spec.vizier_source}")
    session = remote.new_session(timeout_s)

    def download(timeout: float) -> bytes:
        return remote.http_bytes(session, "POST", url, data=payload.encode(), timeout_s=timeout)

    with session:
        table = remote.fetch(
            request, download, parse=lambda content: parse_vizier_votable(content, name=spec.key),
            timeout_s=timeout_s, retries=retries, backoff_s=backoff_s, use_cache=use_cache,
            offline_hint=f"load_catalog({spec.key!r}) reads {default_catalog_path(spec.key)}",
        )
    table.meta.update(source=url, vizier=spec.vizier_source, reference=spec.reference)
    return table


def parse_vizier_votable(content: bytes, *, name: str) -> Table:
    """Parse a VizieR VOTable answer into the common form; only parses.

    Columns are found by meaning, not label, so the parser does not depend on each
    catalogue's column names: the designation is the ``meta.id;meta.main`` field, the
    position VizieR's computed ``_RAJ2000``/``_DEJ2000`` (else the ``pos.eq.*;meta.main``
    fields), the redshift the first ``src.redshift`` field, and other string
    ``meta.id`` fields become ``alt_names``.

    Raises
    ------
    CatalogError
        Not a VOTable, a VizieR error, no matching table, or a needed column missing.
    """
    spec = catalog_spec(name)
    table = _pick_vizier_table(_read_votable(content), spec)
    fields = {f.name: (f.ucd or "").lower() for f in table.fields}
    data = table.to_table(use_names_over_ids=True)
    id_col = _field_by_ucd(fields, "meta.id;meta.main", spec)
    ra_col = "_RAJ2000" if "_RAJ2000" in fields else _field_by_ucd(fields, "pos.eq.ra;meta.main", spec)
    dec_col = "_DEJ2000" if "_DEJ2000" in fields else _field_by_ucd(fields, "pos.eq.dec;meta.main", spec)
    z_cols = [n for n, ucd in fields.items() if ucd.split(";")[0] == "src.redshift"]
    names = [mcxc_style(n) for n in as_strings(data[id_col])]
    alt_cols = [n for n, ucd in fields.items() if ucd.startswith("meta.id") and n != id_col and data[n].dtype.kind in "US"]
    return make_catalog_table(
        name=names, ra_deg=as_float(data[ra_col]), dec_deg=as_float(data[dec_col]),
        z=as_float(data[z_cols[0]]) if z_cols else np.full(len(names), np.nan),
        catalog=spec.key, alt_names=join_alt_names(*(data[c] for c in alt_cols), exclude=names),
        source=f"VizieR {spec.vizier_source}",
    )


def _read_votable(content: bytes) -> votable.tree.VOTableFile:
    head = content.lstrip()[:2000]
    if not (head.startswith(b"<?xml") or b"<VOTABLE" in head):
        raise CatalogError(f"VizieR answer is not a VOTable (starts {content[:60]!r})")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VOWarning)  # VizieR's VOTables trip pedantic checks
        warnings.simplefilter("ignore", u.UnitsWarning)
        try:
            return votable.parse(io.BytesIO(content), verify="ignore")
        except Exception as exc:
            raise CatalogError(f"VizieR answer is not a readable VOTable ({type(exc).__name__}: {exc})") from exc


def _pick_vizier_table(vot: votable.tree.VOTableFile, spec: CatalogSpec) -> votable.tree.TableElement:
    tables = [t for t in vot.iter_tables() if t.array is not None and len(t.array) > 0]
    if not tables:
        errors = [info.content or info.value for info in vot.iter_info() if info.name == "QUERY_STATUS" and info.value == "ERROR"]
        reason = f"VizieR says: {'; '.join(map(str, errors))}" if errors else "the answer holds no rows"
        raise CatalogError(f"VizieR {spec.vizier_source}: {reason}")
    exact = [t for t in tables if t.name == spec.vizier_table]
    partial = [t for t in tables if spec.vizier_table and spec.vizier_table in (t.name or "")]
    chosen = exact or partial or (tables if len(tables) == 1 else [])
    if not chosen:
        names = ", ".join(str(t.name) for t in tables)
        raise CatalogError(f"VizieR {spec.vizier_source}: no table matching {spec.vizier_table!r} among {names}")
    return chosen[0]


def _field_by_ucd(fields: Mapping[str, str], ucd: str, spec: CatalogSpec) -> str:
    for name, field_ucd in fields.items():
        if field_ucd == ucd:
            return name
    raise CatalogError(f"VizieR {spec.vizier_source}: no column with UCD {ucd!r}; columns: {', '.join(fields)}")
