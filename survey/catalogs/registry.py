"""Galaxy-cluster catalogues in one table form, read locally or from VizieR, and cross-matched.

Every catalogue becomes an astropy ``Table`` with the same six columns (``CATALOG_COLUMNS``):

========== ======= ===============================================================
name       str     the catalogue's own designation (``"PSZ2 G008.94-81.22"``)
ra, dec    float64 ICRS degrees
z          float64 redshift; NaN when the catalogue has none
catalog    str     short catalogue key (``"psz2"``, ``"mgcls"``, ``"mcxc"``, ``"cosmos"``)
alt_names  str     other designations, ``";"``-separated, possibly empty
========== ======= ===============================================================

Why astropy ``Table`` rather than a pandas DataFrame: the catalogues arrive as CDS text,
FITS and VOTable, which astropy reads natively (keeping units), the CLI writes VOTable and
CSV through the same object, and a caller that wants pandas has ``Table.to_pandas()``.

Online access keeps three steps apart, as astroquery's vizier does: ``vizier_payload``
builds the request without touching the network, ``fetch_vizier`` gets the bytes through
``survey.remote`` (cache, timeout, retries), and ``parse_vizier_votable`` only parses.

Cross-matching is a pure numpy/scipy kernel on unit vectors (``_nearest``) behind a
validating wrapper (``crossmatch``), after lsdb's kd-tree cross-match.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import astropy.units as u
import numpy as np
import numpy.typing as npt
from astropy.io import ascii, fits, votable
from astropy.io.votable.exceptions import VOWarning
from astropy.table import Table
from scipy.spatial import cKDTree

from survey import remote
from survey.config import data_dir
from survey.defaults import CATALOG_FORMATS, CATALOG_NAMES
from survey.exceptions import BadInputError, CatalogError
from survey.sky.footprint import in_gleam_footprint
from survey.sky.geometry import arcmin_to_chord, chord_to_arcmin, unit_vectors

CATALOG_COLUMNS = ("name", "ra", "dec", "z", "catalog", "alt_names")
"""The columns of every catalogue table, in this order."""

ALT_SEPARATOR = ";"
"""Separator of the designations in ``alt_names``."""

OUTPUT_UCDS = {
    "name": "meta.id;meta.main",
    "ra": "pos.eq.ra;meta.main",
    "dec": "pos.eq.dec;meta.main",
    "z": "src.redshift",
    "alt_names": "meta.id",
}
"""UCDs written into VOTable output, so VO tools (and ``parse_vizier_votable``) find the columns."""

_MCXC_ID = re.compile(r"^J\d{4}\.\d[+-]\d{4}$")

# --------------------------------------------------------------------------------------
# The common table form
# --------------------------------------------------------------------------------------


def make_catalog_table(
    *,
    name: Sequence[str],
    ra_deg: npt.ArrayLike,
    dec_deg: npt.ArrayLike,
    z: npt.ArrayLike,
    catalog: str,
    alt_names: Sequence[str] | None = None,
    source: str = "",
) -> Table:
    """Build a catalogue table in the common form, checking lengths and coordinate ranges.

    Negative or non-finite redshifts become NaN (PSZ2 writes -1 for "unknown").

    >>> t = make_catalog_table(name=["A"], ra_deg=[10.0], dec_deg=[-5.0], z=[-1.0], catalog="demo")
    >>> t.colnames, bool(np.isnan(t["z"][0])), t["alt_names"][0] == ""
    (['name', 'ra', 'dec', 'z', 'catalog', 'alt_names'], True, True)
    """
    names = [str(n).strip() for n in name]
    n_rows = len(names)
    ra = np.asarray(ra_deg, dtype=np.float64)
    dec = np.asarray(dec_deg, dtype=np.float64)
    redshift = np.asarray(z, dtype=np.float64).copy()
    alts = [""] * n_rows if alt_names is None else [str(a) for a in alt_names]
    where = source or catalog
    if not (len(ra) == len(dec) == len(redshift) == len(alts) == n_rows):
        raise CatalogError(
            f"{where}: column lengths differ ({n_rows} names, {len(ra)} RA, {len(dec)} Dec, "
            f"{len(redshift)} z, {len(alts)} alt_names)"
        )
    _check_positions(ra, dec, names, where)
    redshift[~np.isfinite(redshift) | (redshift < 0)] = np.nan
    table = Table(
        [names, ra, dec, redshift, [catalog] * n_rows, alts],
        names=CATALOG_COLUMNS,
        dtype=(str, np.float64, np.float64, np.float64, str, str),
        meta={"catalog": catalog, "source": source},
    )
    table["ra"].unit = table["dec"].unit = u.deg
    return table


def _check_positions(ra: np.ndarray, dec: np.ndarray, names: Sequence[str], where: str) -> None:
    bad = ~(np.isfinite(ra) & np.isfinite(dec) & (ra >= 0) & (ra < 360) & (np.abs(dec) <= 90))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise CatalogError(
            f"{where}: row {row} ({names[row]!r}) has RA={ra[row]}, Dec={dec[row]}; "
            f"expected 0 <= RA < 360 and |Dec| <= 90 degrees ({int(bad.sum())} bad rows)"
        )


def mcxc_style(designation: str) -> str:
    """Prefix bare MCXC identifiers (``J0658.5-5556``) with ``MCXC`` so they mean something alone.

    >>> mcxc_style("J0658.5-5556"), mcxc_style("Abell 3399")
    ('MCXC J0658.5-5556', 'Abell 3399')
    """
    text = designation.strip()
    return f"MCXC {text}" if _MCXC_ID.match(text) else text


def join_alt_names(*columns: Iterable[object], exclude: Sequence[str] | None = None) -> list[str]:
    """Row-wise ``";"``-join of the non-empty designations in ``columns``, deduplicated.

    Masked or blank entries are skipped; a designation equal to the row's ``exclude`` name
    is dropped; bare MCXC ids get their prefix.

    >>> join_alt_names(["J0013.6-1930", ""], ["Abell 13", "Abell 13"], exclude=["Abell 13", "Abell 13"])
    ['MCXC J0013.6-1930', '']
    """
    if not columns:
        return [""] * (len(exclude) if exclude is not None else 0)
    rows = list(zip(*[_as_strings(c) for c in columns]))
    out = []
    for i, values in enumerate(rows):
        own = exclude[i] if exclude is not None else None
        kept = dict.fromkeys(mcxc_style(v) for v in values if v and v != own)
        kept.pop(own, None)
        out.append(ALT_SEPARATOR.join(kept))
    return out


def _as_strings(column: Iterable[object]) -> list[str]:
    """Strings of a (possibly masked) column; masked and None become ``""``."""
    if hasattr(column, "filled"):
        column = column.filled("")  # type: ignore[union-attr]
    return ["" if v is None or v is np.ma.masked else str(v).strip() for v in column]


def _as_float(column: object) -> np.ndarray:
    """Floats of a (possibly masked) column; masked becomes NaN."""
    if hasattr(column, "filled"):
        return np.asarray(column.filled(np.nan), dtype=np.float64)  # type: ignore[union-attr]
    return np.asarray(column, dtype=np.float64)


# --------------------------------------------------------------------------------------
# Local files: one parser per catalogue format
# --------------------------------------------------------------------------------------


def read_psz2_cds(path: str | Path, *, readme: str | Path | None = None) -> Table:
    """PSZ2 from the CDS fixed-width text and its ReadMe (J/A+A/594/A27 ``psz2.dat``).

    Parameters
    ----------
    path : path-like
        ``psz2.dat``.
    readme : path-like, optional
        The CDS ReadMe describing it; default ``psz2.ReadMe`` (or ``ReadMe``) beside it.
    """
    path = Path(path)
    readme = Path(readme) if readme is not None else _sibling_readme(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", u.UnitsWarning)  # "10+14Msun" is CDS, not FITS, syntax
        raw = _read_or_fail(lambda: ascii.read(path, format="cds", readme=str(readme)), path, "PSZ2 CDS table")
    _require_columns(raw.colnames, ("Name", "RAdeg", "DEdeg", "z"), path)
    names = _as_strings(raw["Name"])
    alts = join_alt_names(*(raw[c] for c in ("zID", "MCXC", "RedMAPPer", "ACT", "SPT") if c in raw.colnames), exclude=names)
    return make_catalog_table(
        name=names, ra_deg=_as_float(raw["RAdeg"]), dec_deg=_as_float(raw["DEdeg"]), z=_as_float(raw["z"]),
        catalog="psz2", alt_names=alts, source=str(path),
    )


def _sibling_readme(path: Path) -> Path:
    for candidate in (path.with_suffix(".ReadMe"), path.parent / "ReadMe"):
        if candidate.exists():
            return candidate
    raise CatalogError(f"{path}: no CDS ReadMe beside it ({path.with_suffix('.ReadMe').name} or ReadMe); pass readme=")


def read_psz2_fits(path: str | Path) -> Table:
    """PSZ2 from Planck's union FITS table (``HFI_PCCS_SZ-union_R2.08``, extension 1)."""
    path = Path(path)
    data = _fits_table(path, "PSZ2 union FITS table")
    _require_columns(data.columns.names, ("NAME", "RA", "DEC", "REDSHIFT"), path)
    names = _as_strings(data["NAME"])
    alt_columns = [c for c in ("REDSHIFT_ID", "MCXC", "REDMAPPER", "ACT", "SPT") if c in data.columns.names]
    alts = join_alt_names(*(data[c] for c in alt_columns), exclude=names)
    return make_catalog_table(
        name=names, ra_deg=data["RA"], dec_deg=data["DEC"], z=data["REDSHIFT"],
        catalog="psz2", alt_names=alts, source=str(path),
    )


_MGCLS_BYTES = (
    # (label, first byte, last byte), 1-based inclusive as in a CDS ReadMe. Measured on
    # CDS J/A+A/657/A56 table1.dat; only the columns the common form needs are named.
    ("Sel", 1, 1),      # R = radio-selected, X = X-ray (MCXC) selected
    ("Name", 3, 19),
    ("Note", 20, 20),   # "+" marks the Bullet cluster, listed in both selections
    ("RAdeg", 22, 29),
    ("DEdeg", 31, 38),
    ("z", 40, 44),
    ("AltName", 61, 100),
)


def read_mgcls(path: str | Path) -> Table:
    """MGCLS table 1 (Knowles et al. 2022, CDS J/A+A/657/A56 ``table1.dat``): 116 rows.

    The Bullet cluster appears twice, once radio-selected ("Bullet") and once X-ray
    selected ("J0658.5-5556", 1.0' away); both rows are kept, as published, and each lists
    the other's name in ``alt_names``. X-ray-selected names are MCXC ids and get the
    ``MCXC`` prefix.
    """
    path = Path(path)
    starts = [first - 1 for _, first, _ in _MGCLS_BYTES]
    ends = [last - 1 for _, _, last in _MGCLS_BYTES]
    raw = _read_or_fail(
        lambda: ascii.read(path, format="fixed_width_no_header", col_starts=starts, col_ends=ends,
                           names=[label for label, _, _ in _MGCLS_BYTES], delimiter=None, guess=False),
        path, "MGCLS table 1",
    )
    names = [mcxc_style(n) for n in _as_strings(raw["Name"])]
    return make_catalog_table(
        name=names, ra_deg=_as_float(raw["RAdeg"]), dec_deg=_as_float(raw["DEdeg"]), z=_as_float(raw["z"]),
        catalog="mgcls", alt_names=join_alt_names(raw["AltName"], exclude=names), source=str(path),
    )


def read_mcxc(path: str | Path) -> Table:
    """MCXC meta-catalogue (Piffaretti et al. 2011, CDS J/A+A/534/A109 as FITS): 1743 rows."""
    path = Path(path)
    data = _fits_table(path, "MCXC FITS table")
    _require_columns(data.columns.names, ("MCXC", "RAdeg", "DEdeg", "z"), path)
    names = [mcxc_style(n) for n in _as_strings(data["MCXC"])]
    alts = join_alt_names(*(data[c] for c in ("OName", "AName") if c in data.columns.names), exclude=names)
    return make_catalog_table(
        name=names, ra_deg=data["RAdeg"], dec_deg=data["DEdeg"], z=data["z"],
        catalog="mcxc", alt_names=alts, source=str(path),
    )


def read_cosmos(path: str | Path) -> Table:
    """COSMOS X-ray groups (George et al. 2011 style CSV; names ``COSMOS CL J...``): 129 rows."""
    path = Path(path)
    raw = _read_or_fail(lambda: ascii.read(path, format="csv", guess=False), path, "COSMOS groups CSV")
    _require_columns(raw.colnames, ("name", "ra", "dec", "redshift"), path)
    return make_catalog_table(
        name=_as_strings(raw["name"]), ra_deg=_as_float(raw["ra"]), dec_deg=_as_float(raw["dec"]),
        z=_as_float(raw["redshift"]), catalog="cosmos", source=str(path),
    )


def _fits_table(path: Path, what: str) -> fits.FITS_rec:
    """The first table extension's records, read with astropy.io.fits (no unit parsing)."""
    def read() -> fits.FITS_rec:
        with fits.open(path, memmap=False) as hdul:
            for hdu in hdul[1:]:
                if isinstance(hdu, (fits.BinTableHDU, fits.TableHDU)):
                    return hdu.data.copy()
        raise CatalogError(f"{path}: no table extension; expected the {what}")

    return _read_or_fail(read, path, what)


def _read_or_fail(read: Callable[[], object], path: Path, what: str):
    """Run a reader, turning missing or unparseable files into a CatalogError naming the file."""
    if not path.exists():
        raise CatalogError(
            f"{path}: {what} not found. Set HALO_DATA_DIR to the folder holding catalogs/, "
            "pass path=, or fetch it from VizieR with online=True."
        )
    try:
        return read()
    except CatalogError:
        raise
    except Exception as exc:  # the astropy readers raise many types for malformed input
        raise CatalogError(f"{path}: could not be read as the {what} ({type(exc).__name__}: {exc})") from exc


def _require_columns(present: Sequence[str], needed: Sequence[str], path: Path | str) -> None:
    missing = [c for c in needed if c not in present]
    if missing:
        raise CatalogError(f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(present)}")


# --------------------------------------------------------------------------------------
# The dispatcher
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogSpec:
    """Where one catalogue lives, locally and on VizieR.

    Attributes
    ----------
    key : str
        Short name (``"psz2"``).
    filename : str
        Default file under ``data_dir()/"catalogs"``.
    reader : callable
        ``reader(path) -> Table`` for the default file format.
    vizier_source : str
        VizieR ``-source``: a catalogue or one of its tables.
    vizier_table : str
        Which table of the answer to use: exact name, or a substring; ``""`` takes the only one.
    reference : str
        Who made it, for ``Table.meta``.
    """

    key: str
    filename: str
    reader: Callable[[Path], Table]
    vizier_source: str
    vizier_table: str
    reference: str


CATALOGS: dict[str, CatalogSpec] = {
    spec.key: spec
    for spec in (
        CatalogSpec("psz2", "psz2.dat", read_psz2_cds, "J/A+A/594/A27/psz2", "J/A+A/594/A27/psz2",
                    "Planck Collaboration 2016, A&A 594, A27"),
        CatalogSpec("mgcls", "mgcls_table1.dat", read_mgcls, "J/A+A/657/A56/table1", "J/A+A/657/A56/table1",
                    "Knowles et al. 2022, A&A 657, A56"),
        CatalogSpec("mcxc", "mcxc.fits", read_mcxc, "J/A+A/534/A109/mcxc", "J/A+A/534/A109/mcxc",
                    "Piffaretti et al. 2011, A&A 534, A109"),
        # The table name of the group list inside J/ApJ/742/125 is not pinned here (no
        # network to check it): take the table whose name mentions groups.
        CatalogSpec("cosmos", "cosmos_xray_groups.csv", read_cosmos, "J/ApJ/742/125", "group",
                    "George et al. 2011, ApJ 742, 125"),
    )
}


def catalog_spec(name: str) -> CatalogSpec:
    """The spec of catalogue ``name`` (case-insensitive), or a CatalogError listing the known ones."""
    spec = CATALOGS.get(name.strip().lower())
    if spec is None:
        raise CatalogError(f"unknown catalogue {name!r}; expected one of {', '.join(CATALOG_NAMES)}")
    return spec


def default_catalog_path(name: str) -> Path:
    """Local file of catalogue ``name``: ``survey.config.data_dir()/"catalogs"/<file>``."""
    return data_dir() / "catalogs" / catalog_spec(name).filename


def load_catalog(name: str, *, path: str | Path | None = None, online: bool = False) -> Table:
    """Load cluster catalogue ``name`` (psz2, mgcls, mcxc, cosmos) in the common table form.

    Parameters
    ----------
    name : str
        Catalogue key, case-insensitive.
    path : path-like, optional
        Local file; default ``default_catalog_path(name)``. For PSZ2 a ``.fits`` path is
        read as Planck's union FITS table, anything else as CDS text with its ReadMe.
    online : bool
        Fetch from VizieR instead (``fetch_vizier``: cached, with timeout and retries).

    Raises
    ------
    CatalogError
        Unknown name, or a missing / unparseable file (the message names it).
    RemoteServiceError
        ``online=True`` and VizieR cannot be reached or answers badly.
    """
    spec = catalog_spec(name)
    if online and path is not None:
        raise BadInputError("path", f"{path} was given with online=True; choose the local file or VizieR, not both")
    if online:
        return fetch_vizier(spec.key)
    file = Path(path) if path is not None else default_catalog_path(spec.key)
    reader = read_psz2_fits if spec.key == "psz2" and file.suffix.lower() in (".fits", ".fit") else spec.reader
    table = reader(file)
    table.meta["reference"] = spec.reference
    return table


# --------------------------------------------------------------------------------------
# VizieR: build request / fetch / parse
# --------------------------------------------------------------------------------------

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
    names = [mcxc_style(n) for n in _as_strings(data[id_col])]
    alt_cols = [n for n, ucd in fields.items() if ucd.startswith("meta.id") and n != id_col and data[n].dtype.kind in "US"]
    return make_catalog_table(
        name=names, ra_deg=_as_float(data[ra_col]), dec_deg=_as_float(data[dec_col]),
        z=_as_float(data[z_cols[0]]) if z_cols else np.full(len(names), np.nan),
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


# --------------------------------------------------------------------------------------
# Footprint
# --------------------------------------------------------------------------------------

FOOTPRINTS = ("gleam",)
"""Footprints ``filter_footprint`` knows."""


def filter_footprint(table: Table, *, footprint: str = "gleam", mask_magellanic: bool = True) -> Table:
    """Rows of ``table`` inside ``footprint`` (only ``"gleam"``: Dec < +30 deg, |b| > 10 deg).

    ``mask_magellanic`` also drops the Magellanic Clouds, as the GLEAM extragalactic
    catalogue does; the data README's count (1182 of 1653 PSZ2 clusters) uses only the
    Dec and latitude cuts, i.e. ``mask_magellanic=False``.
    """
    if footprint != "gleam":
        raise BadInputError("footprint", f"unknown footprint {footprint!r}; expected one of {', '.join(FOOTPRINTS)}")
    inside = in_gleam_footprint(table["ra"], table["dec"], mask_magellanic=mask_magellanic)
    selected = table[inside]
    selected.meta["footprint"] = f"gleam (mask_magellanic={mask_magellanic})"
    return selected


# --------------------------------------------------------------------------------------
# Cross-match: pure kernel + validating wrapper
# --------------------------------------------------------------------------------------








def _nearest(
    left_xyz: npt.NDArray[np.float64], right_xyz: npt.NDArray[np.float64], max_chord: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """For each left vector, the nearest right vector within ``max_chord``: (index, chord).

    Pure kernel: no validation, no units. No match is index -1 and chord +inf.
    """
    index = np.full(len(left_xyz), -1, dtype=np.int64)
    chord = np.full(len(left_xyz), np.inf)
    if len(left_xyz) == 0 or len(right_xyz) == 0:
        return index, chord
    # The tree's bound is open (<); nudge it so a pair exactly at the radius still matches.
    dist, idx = cKDTree(right_xyz).query(left_xyz, k=1, distance_upper_bound=np.nextafter(max_chord, np.inf))
    found = np.isfinite(dist) & (dist <= max_chord)  # infinite distance means no match
    index[found] = idx[found]
    chord[found] = dist[found]
    return index, chord


@dataclass(frozen=True)
class CrossMatch:
    """Nearest right-hand row for every left-hand row.

    Attributes
    ----------
    index : numpy.ndarray of int64
        Row of the right table, or -1 where nothing lies within the radius.
    separation_arcmin : numpy.ndarray of float64
        Separation in arcmin, NaN where there is no match.
    """

    index: npt.NDArray[np.int64]
    separation_arcmin: npt.NDArray[np.float64]

    @property
    def matched(self) -> npt.NDArray[np.bool_]:
        """True where a left row has a match."""
        return self.index >= 0

    def take(self, column: npt.ArrayLike, *, fill: object) -> np.ndarray:
        """Values of a right-table ``column`` per left row, ``fill`` where there is no match."""
        values = np.asarray(column)
        out = np.full(len(self.index), fill, dtype=values.dtype if values.dtype.kind not in "US" else object)
        out[self.matched] = values[self.index[self.matched]]
        return out


def crossmatch(left: Table, right: Table, *, radius_arcmin: float) -> CrossMatch:
    """Nearest ``right`` row within ``radius_arcmin`` of each ``left`` row.

    Both tables need ``ra`` and ``dec`` columns in degrees (the common catalogue form, or
    any table with those columns).

    >>> left = make_catalog_table(name=["a", "b"], ra_deg=[10.0, 50.0], dec_deg=[0.0, 0.0], z=[0, 0], catalog="l")
    >>> right = make_catalog_table(name=["x"], ra_deg=[10.0 + 1 / 60], dec_deg=[0.0], z=[0], catalog="r")
    >>> m = crossmatch(left, right, radius_arcmin=2.0)
    >>> m.index.tolist(), np.round(m.separation_arcmin, 3).tolist()
    ([0, -1], [1.0, nan])
    """
    radius = _check_radius(radius_arcmin)
    left_xyz = _table_xyz(left, "left")
    right_xyz = _table_xyz(right, "right")
    index, chord = _nearest(left_xyz, right_xyz, float(arcmin_to_chord(radius)))
    separation = np.where(index >= 0, chord_to_arcmin(np.where(np.isfinite(chord), chord, 0.0)), np.nan)
    return CrossMatch(index=index, separation_arcmin=separation)


def _check_radius(radius_arcmin: float) -> float:
    radius = float(radius_arcmin)
    if not (np.isfinite(radius) and 0.0 < radius <= 180.0 * 60.0):
        raise BadInputError("radius_arcmin", f"{radius_arcmin!r} is not a positive angle up to 10800 arcmin (180 deg)")
    return radius


def _table_xyz(table: Table, which: str) -> npt.NDArray[np.float64]:
    for column in ("ra", "dec"):
        if column not in table.colnames:
            raise BadInputError(f"{which} table", f"has no {column!r} column (columns: {', '.join(table.colnames)})")
    ra, dec = _as_float(table["ra"]), _as_float(table["dec"])
    _check_match_positions(ra, dec, f"{which} table")
    return unit_vectors(ra, dec)


def _check_match_positions(ra: np.ndarray, dec: np.ndarray, where: str) -> None:
    bad = ~(np.isfinite(ra) & np.isfinite(dec) & (np.abs(dec) <= 90))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise BadInputError(where, f"row {row} has RA={ra[row]}, Dec={dec[row]}; positions must be finite with |Dec| <= 90")


def nearest_clusters(
    ra_deg: npt.ArrayLike,
    dec_deg: npt.ArrayLike,
    catalogs: Mapping[str, Table],
    *,
    radius_arcmin: float,
) -> dict[str, np.ndarray]:
    """Nearest cluster of each catalogue for each position: the columns that annotate candidates.

    Returns, for every ``key`` of ``catalogs``, three arrays as long as the positions:
    ``{key}_name`` (str, ``""`` where none lies within ``radius_arcmin``),
    ``{key}_sep_arcmin`` and ``{key}_z`` (float64, NaN where none). A flat
    ``dict[str, ndarray]`` so it can be merged into a Ray Data batch.

    >>> cat = make_catalog_table(name=["A2744"], ra_deg=[3.58], dec_deg=[-30.39], z=[0.308], catalog="demo")
    >>> out = nearest_clusters([3.58, 100.0], [-30.39, 0.0], {"demo": cat}, radius_arcmin=5)
    >>> out["demo_name"].tolist(), out["demo_z"].tolist()
    (['A2744', ''], [0.308, nan])
    """
    ra = np.atleast_1d(np.asarray(ra_deg, dtype=np.float64))
    dec = np.atleast_1d(np.asarray(dec_deg, dtype=np.float64))
    if ra.shape != dec.shape or ra.ndim != 1:
        raise BadInputError("positions", f"ra_deg and dec_deg must be 1-D arrays of one length, got {ra.shape} and {dec.shape}")
    radius = _check_radius(radius_arcmin)
    _check_match_positions(ra, dec, "positions")
    positions = Table({"ra": ra, "dec": dec})
    columns: dict[str, np.ndarray] = {}
    for key, catalog in catalogs.items():
        match = crossmatch(positions, catalog, radius_arcmin=radius)
        columns[f"{key}_name"] = match.take(np.asarray(catalog["name"], dtype=str), fill="").astype(str)
        columns[f"{key}_sep_arcmin"] = match.separation_arcmin
        columns[f"{key}_z"] = match.take(_as_float(catalog["z"]), fill=np.nan).astype(np.float64)
    return columns


# --------------------------------------------------------------------------------------
# Output for the CLI
# --------------------------------------------------------------------------------------


def _check_format(fmt: str) -> None:
    if fmt not in CATALOG_FORMATS:
        raise BadInputError("--format", f"unknown format {fmt!r}; expected one of {', '.join(CATALOG_FORMATS)}")


def format_catalog(table: Table, fmt: str = "table") -> str:
    """Text of ``table`` as an aligned table, CSV or VOTable XML (all rows, all columns).

    The aligned table rounds positions to 1e-5 deg and z to 1e-4 for reading; CSV and
    VOTable keep full precision.
    """
    _check_format(fmt)
    if fmt == "table":
        shown = table.copy(copy_data=False)
        for column, spec in (("ra", ".5f"), ("dec", ".5f"), ("z", ".4f")):
            if column in shown.colnames:
                shown[column].info.format = spec
        return "\n".join(shown.pformat(max_lines=-1, max_width=-1)) + "\n"
    if fmt == "csv":
        buffer = io.StringIO()
        table.write(buffer, format="ascii.csv", overwrite=True)
        return buffer.getvalue()
    document = votable.from_table(table)
    for votable_field in document.get_first_table().fields:
        votable_field.ucd = OUTPUT_UCDS.get(votable_field.name)
    buffer_bytes = io.BytesIO()
    document.to_xml(buffer_bytes)
    return buffer_bytes.getvalue().decode("utf-8")


def catalog_command(name: str, *, footprint: str | None = None, fmt: str = "table", online: bool = False) -> str:
    """What ``halo-survey catalog NAME [--footprint gleam] [--format F] [--online]`` prints.

    ``footprint="gleam"`` keeps the clusters inside the GLEAM extragalactic footprint,
    Magellanic Clouds masked as in the survey's tiling (``filter_footprint``).
    A bad format fails before the catalogue is read.
    """
    _check_format(fmt)
    table = load_catalog(name, online=online)
    if footprint is not None:
        table = filter_footprint(table, footprint=footprint)
    return format_catalog(table, fmt)
