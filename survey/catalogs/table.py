"""The common table form of every cluster catalogue, its footprint filter, and its text output.

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
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence

import astropy.units as u
import numpy as np
import numpy.typing as npt
from astropy.io import votable
from astropy.table import Table

from survey.defaults import CATALOG_FORMATS
from survey.exceptions import BadInputError, CatalogError
from survey.sky.footprint import in_gleam_footprint

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

    Parameters
    ----------
    name : sequence of str
        The catalogue's own designations; surrounding blanks are stripped.
    ra_deg, dec_deg : array_like
        ICRS positions in degrees, 0 <= RA < 360 and |Dec| <= 90.
    z : array_like
        Redshifts; negative or non-finite values mean unknown and become NaN.
    catalog : str
        Short catalogue key, written into every row's ``catalog`` and ``meta["catalog"]``.
    alt_names : sequence of str, optional
        Other designations per row, ``";"``-separated; default ``""`` for every row.
    source : str
        Where the rows came from (file or service), kept in ``meta["source"]`` and named in
        error messages; default ``""`` (messages then name ``catalog``).

    Returns
    -------
    astropy.table.Table
        The six ``CATALOG_COLUMNS`` in order, ``ra``/``dec`` with unit deg.

    Raises
    ------
    CatalogError
        Columns of different lengths, or a position out of range (the message names the
        first bad row and counts them).

    Examples
    --------
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
    rows = list(zip(*[as_strings(c) for c in columns]))
    out = []
    for i, values in enumerate(rows):
        own = exclude[i] if exclude is not None else None
        kept = dict.fromkeys(mcxc_style(v) for v in values if v and v != own)
        kept.pop(own, None)
        out.append(ALT_SEPARATOR.join(kept))
    return out


def as_strings(column: Iterable[object]) -> list[str]:
    """Strings of a (possibly masked) column; masked and None become ``""``."""
    if hasattr(column, "filled"):
        column = column.filled("")  # type: ignore[union-attr]
    return ["" if v is None or v is np.ma.masked else str(v).strip() for v in column]


def as_float(column: object) -> np.ndarray:
    """Floats of a (possibly masked) column; masked becomes NaN."""
    if hasattr(column, "filled"):
        return np.asarray(column.filled(np.nan), dtype=np.float64)  # type: ignore[union-attr]
    return np.asarray(column, dtype=np.float64)


FOOTPRINTS = ("gleam",)
"""Footprints ``filter_footprint`` knows."""


def filter_footprint(table: Table, *, footprint: str = "gleam", mask_magellanic: bool = True) -> Table:
    """Rows of ``table`` inside ``footprint`` (only ``"gleam"``: Dec < +30 deg, |b| > 10 deg).

    ``mask_magellanic`` also drops the Magellanic Clouds, as the GLEAM extragalactic
    catalogue does; the data README's count (1182 of 1653 PSZ2 clusters) uses only the
    Dec and latitude cuts, i.e. ``mask_magellanic=False``.

    Parameters
    ----------
    table : astropy.table.Table
        Any table with ``ra`` and ``dec`` columns in ICRS degrees.
    footprint : str
        Name of the footprint; only ``"gleam"`` is known (``FOOTPRINTS``).
    mask_magellanic : bool
        Also drop rows in the Magellanic Clouds.

    Returns
    -------
    astropy.table.Table
        The rows inside, in their order, with the cut recorded in ``meta["footprint"]``.

    Raises
    ------
    BadInputError
        ``footprint`` is not a known footprint.
    """
    if footprint != "gleam":
        raise BadInputError("footprint", f"unknown footprint {footprint!r}; expected one of {', '.join(FOOTPRINTS)}")
    inside = in_gleam_footprint(table["ra"], table["dec"], mask_magellanic=mask_magellanic)
    selected = table[inside]
    selected.meta["footprint"] = f"gleam (mask_magellanic={mask_magellanic})"
    return selected


def check_format(fmt: str) -> None:
    """Raise BadInputError unless ``fmt`` is one of ``CATALOG_FORMATS`` (before any catalogue is read)."""
    if fmt not in CATALOG_FORMATS:
        raise BadInputError("--format", f"unknown format {fmt!r}; expected one of {', '.join(CATALOG_FORMATS)}")


def format_catalog(table: Table, fmt: str = "table") -> str:
    """Text of ``table`` as an aligned table, CSV or VOTable XML (all rows, all columns).

    The aligned table rounds positions to 1e-5 deg and z to 1e-4 for reading; CSV and
    VOTable keep full precision.
    """
    check_format(fmt)
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
