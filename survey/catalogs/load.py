"""Loading a catalogue by name, from its local file or from VizieR, and the ``halo-survey catalog`` command."""

from __future__ import annotations

from pathlib import Path

from astropy.table import Table

from survey.catalogs.readers import read_psz2_fits
from survey.catalogs.registry import CatalogSpec, catalog_spec, default_catalog_path
from survey.catalogs.table import check_format, filter_footprint, format_catalog
from survey.catalogs.vizier import fetch_vizier
from survey.exceptions import BadInputError, CatalogError


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

    Returns
    -------
    astropy.table.Table
        The catalogue in the common form (``CATALOG_COLUMNS``), with its literature
        reference in ``meta["reference"]``.

    Raises
    ------
    CatalogError
        Unknown name, or a missing / unparseable file (the message names it), or a default
        file whose row count is not its release's (``check_release_rows``).
    RemoteServiceError
        ``online=True`` and VizieR cannot be reached or answers badly.
    BadInputError
        Both ``path`` and ``online=True`` were given.
    """
    spec = catalog_spec(name)
    if online and path is not None:
        raise BadInputError("path", f"{path} was given with online=True; choose the local file or VizieR, not both")
    if online:
        return fetch_vizier(spec.key)
    file = Path(path) if path is not None else default_catalog_path(spec.key)
    reader = read_psz2_fits if spec.key == "psz2" and file.suffix.lower() in (".fits", ".fit") else spec.reader
    table = reader(file)
    if path is None:
        check_release_rows(table, spec=spec, path=file)
    table.meta["reference"] = spec.reference
    return table


def check_release_rows(table: Table, *, spec: CatalogSpec, path: Path) -> None:
    """Refuse a default catalogue file whose rows differ from its release's (``CatalogSpec.rows``).

    A file cut short by a failed copy or download still parses, line by line, and would
    silently lose the clusters at its end (PSZ2 is ordered by Galactic longitude: a whole
    part of the sky).

    Parameters
    ----------
    table : astropy.table.Table
        The catalogue as read.
    spec : CatalogSpec
        Its registry entry, with the release's row count.
    path : Path
        The file it was read from, for the message.

    Raises
    ------
    CatalogError
        Naming the file, both counts and the fix.
    """
    if spec.rows is not None and len(table) != spec.rows:
        raise CatalogError(
            f"{path}: {len(table)} rows, but the {spec.key.upper()} release ({spec.reference}) has {spec.rows}; "
            f"the file is truncated or another release: copy it again, or fetch it from VizieR with --online"
        )


def catalog_command(name: str, *, footprint: str | None = None, fmt: str = "table", online: bool = False) -> str:
    """What ``halo-survey catalog NAME [--footprint gleam] [--format F] [--online]`` prints.

    ``footprint="gleam"`` keeps the clusters inside the GLEAM extragalactic footprint,
    Magellanic Clouds masked as in the survey's tiling (``filter_footprint``).
    A bad format fails before the catalogue is read.

    Parameters
    ----------
    name : str
        Catalogue key (psz2, mgcls, mcxc, cosmos), case-insensitive.
    footprint : str, optional
        ``"gleam"`` to keep only clusters in that footprint; None keeps every row.
    fmt : str
        ``"table"`` (aligned, rounded for reading), ``"csv"`` or ``"votable"``.
    online : bool
        Fetch the catalogue from VizieR instead of reading the local file.

    Returns
    -------
    str
        The whole catalogue (after the footprint cut) as text in ``fmt``.

    Raises
    ------
    BadInputError
        Unknown format or footprint.
    CatalogError
        Unknown catalogue, or its local file is missing or unparseable.
    RemoteServiceError
        ``online=True`` and VizieR cannot be reached or answers badly.
    """
    check_format(fmt)
    table = load_catalog(name, online=online)
    if footprint is not None:
        table = filter_footprint(table, footprint=footprint)
    return format_catalog(table, fmt)
