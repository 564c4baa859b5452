"""Local catalogue files: one reader per format, each returning the common table form.

PSZ2 as CDS fixed-width text with its ReadMe or as Planck's union FITS table, MGCLS's
Table 1, MCXC's FITS table and the COSMOS X-ray groups' CSV. A missing or unparseable file
raises CatalogError naming it.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.io import ascii, fits
from astropy.table import Table

from survey.catalogs.table import as_float, as_strings, join_alt_names, make_catalog_table, mcxc_style
from survey.defaults import TARGET_TABLE_SUFFIXES
from survey.exceptions import CatalogError


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
    records = readme_records(readme, path.name)
    if records is not None and len(raw) != records:
        raise CatalogError(f"{path}: {len(raw)} rows, but its ReadMe {readme} says {records}; the file is truncated "
                           "or does not belong to that ReadMe: copy both again, or fetch PSZ2 with --online")
    names = as_strings(raw["Name"])
    alts = join_alt_names(*(raw[c] for c in ("zID", "MCXC", "RedMAPPer", "ACT", "SPT") if c in raw.colnames), exclude=names)
    return make_catalog_table(
        name=names, ra_deg=as_float(raw["RAdeg"]), dec_deg=as_float(raw["DEdeg"]), z=as_float(raw["z"]),
        catalog="psz2", alt_names=alts, source=str(path),
    )


def readme_records(readme: str | Path, filename: str) -> int | None:
    """The record count a CDS ReadMe's file summary gives for ``filename``, or None if it gives none.

    The summary lists ``FileName  Lrecl  Records  Explanations``, one file a line.
    """
    try:
        text = Path(readme).read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    match = re.search(rf"^{re.escape(filename)}\s+\d+\s+(\d+)\s", text, flags=re.MULTILINE)
    return int(match.group(1)) if match else None


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
    names = as_strings(data["NAME"])
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
    names = [mcxc_style(n) for n in as_strings(raw["Name"])]
    return make_catalog_table(
        name=names, ra_deg=as_float(raw["RAdeg"]), dec_deg=as_float(raw["DEdeg"]), z=as_float(raw["z"]),
        catalog="mgcls", alt_names=join_alt_names(raw["AltName"], exclude=names), source=str(path),
    )


def read_mcxc(path: str | Path) -> Table:
    """MCXC meta-catalogue (Piffaretti et al. 2011, CDS J/A+A/534/A109 as FITS): 1743 rows."""
    path = Path(path)
    data = _fits_table(path, "MCXC FITS table")
    _require_columns(data.columns.names, ("MCXC", "RAdeg", "DEdeg", "z"), path)
    names = [mcxc_style(n) for n in as_strings(data["MCXC"])]
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
        name=as_strings(raw["name"]), ra_deg=as_float(raw["ra"]), dec_deg=as_float(raw["dec"]),
        z=as_float(raw["redshift"]), catalog="cosmos", source=str(path),
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


POSITION_TABLE_FORMATS = dict(zip(TARGET_TABLE_SUFFIXES, ("ascii.csv", "ascii.ecsv", "fits", "fits", "votable", "votable")))
"""Suffixes of a table of positions (``targets --catalog FILE``) and the astropy format each is read with."""

NAME_COLUMNS = ("name", "id", "designation", "main_id", "source")
RA_COLUMNS = ("ra", "ra_deg", "raj2000", "_raj2000", "radeg", "ra_icrs")
DEC_COLUMNS = ("dec", "dec_deg", "dej2000", "_dej2000", "dedeg", "decdeg", "de_icrs")
"""Column names a positions table may use (case-insensitive), in order of preference."""


def is_positions_file(value: str) -> bool:
    """Whether a ``--catalog`` entry names a table file rather than a known catalogue (by its suffix)."""
    return Path(value).suffix.lower() in POSITION_TABLE_FORMATS


def _column(table: Table, choices: Sequence[str], what: str, path: Path) -> str:
    by_lower = {name.lower(): name for name in table.colnames}
    for choice in choices:
        if choice in by_lower:
            return by_lower[choice]
    raise CatalogError(f"{path}: no {what} column (looked for {', '.join(choices)}; the table has "
                       f"{', '.join(table.colnames)})")


def read_positions(path: str | Path) -> Table:
    """Any table of positions (CSV, ECSV, FITS or VOTable) in the common form: the targets of ``targets --catalog FILE``.

    Parameters
    ----------
    path : str or Path
        The table; its suffix picks the reader (``POSITION_TABLE_FORMATS``). Positions in
        degrees (ICRS); a name column is optional (rows are named ``<file stem>-<row>``).

    Returns
    -------
    astropy.table.Table
        The common form, ``catalog`` the file's name, redshifts NaN unless a ``z`` column exists.

    Raises
    ------
    CatalogError
        Missing or unreadable file, no RA or Dec column, a bad position (naming the row).
    """
    path = Path(path)
    fmt = POSITION_TABLE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise CatalogError(f"{path}: not a table of positions; use one of {', '.join(POSITION_TABLE_FORMATS)}")
    if not path.is_file():
        raise CatalogError(f"{path}: no such file")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", u.UnitsWarning)
        table = _read_or_fail(lambda: Table.read(path, format=fmt), path, "table of positions")
    ra = as_float(table[_column(table, RA_COLUMNS, "RA", path)])
    dec = as_float(table[_column(table, DEC_COLUMNS, "Dec", path)])
    by_lower = {name.lower(): name for name in table.colnames}
    name_column = next((by_lower[c] for c in NAME_COLUMNS if c in by_lower), None)
    names = as_strings(table[name_column]) if name_column else [f"{path.stem}-{i}" for i in range(len(table))]
    z = as_float(table[by_lower["z"]]) if "z" in by_lower else np.full(len(table), np.nan)
    return make_catalog_table(name=names, ra_deg=ra, dec_deg=dec, z=z, catalog=path.name, source=str(path))
