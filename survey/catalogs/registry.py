"""The cluster catalogues this package knows: where each lives locally and on VizieR, and who made it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from astropy.table import Table

from survey.catalogs.readers import read_cosmos, read_mcxc, read_mgcls, read_psz2_cds
from survey.config import data_dir
from survey.defaults import CATALOG_NAMES
from survey.exceptions import CatalogError


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
    rows : int or None
        Rows of the release the default file holds (``../shared/data/README.md``); a
        default file with another count is truncated or another release, and refused.
    """

    key: str
    filename: str
    reader: Callable[[Path], Table]
    vizier_source: str
    vizier_table: str
    reference: str
    rows: int | None = None


CATALOGS: dict[str, CatalogSpec] = {
    spec.key: spec
    for spec in (
        CatalogSpec("psz2", "psz2.dat", read_psz2_cds, "J/A+A/594/A27/psz2", "J/A+A/594/A27/psz2",
                    "Planck Collaboration 2016, A&A 594, A27", 1653),
        CatalogSpec("mgcls", "mgcls_table1.dat", read_mgcls, "J/A+A/657/A56/table1", "J/A+A/657/A56/table1",
                    "Knowles et al. 2022, A&A 657, A56", 116),
        CatalogSpec("mcxc", "mcxc.fits", read_mcxc, "J/A+A/534/A109/mcxc", "J/A+A/534/A109/mcxc",
                    "Piffaretti et al. 2011, A&A 534, A109", 1743),
        # The table name of the group list inside J/ApJ/742/125 is not pinned here (no
        # network to check it): take the table whose name mentions groups.
        CatalogSpec("cosmos", "cosmos_xray_groups.csv", read_cosmos, "J/ApJ/742/125", "group",
                    "George et al. 2011, ApJ 742, 125", 129),
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
