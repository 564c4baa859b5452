"""``halo-survey inject``: write FITS sets with halos injected into them, and the ground truth.

Two inputs, one output layout:

- ``fits:DIR``: every complete four-band image set under ``DIR`` (the paper's cut-out sets
  or mosaics) gets the halos that fall on it, injected with ``survey.model.inject`` (so the
  paper's clipped files stay clipped at their own threshold), and is written under ``OUT``
  with the same relative folder and the same file names;
- ``mock[:SEED]``: a field of the mock sky around each halo is rendered and the halo
  injected, written as ``mock-<i>_Gleam<band>.fits``.

The halos come from a table (``--halos FILE``, columns of ``survey.images.halos.Halo``, at
least ``ra``/``dec``, ``flux_150mhz_jy`` and ``r_e_arcmin``) or from a grid of fluxes and
sizes placed at random on each image set (``--grid``). ``OUT/injected_halos.ecsv`` lists
every halo injected, with the set it went into: the targets of ``halo-survey targets
--source fits:OUT --catalog OUT/injected_halos.ecsv``, and the truth a blind scan of OUT is
compared with.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.table import Table, vstack

from survey.exceptions import BadInputError
from survey.images.base import pixel_scale_deg, read_band_file, write_band_fits
from survey.images.fitsdir import FitsDirectorySource, ImageSet
from survey.images.halos import HALO_SPECTRAL_INDEX, Halo, halo_table, halos_from_table
from survey.images.mock import MockSky, MockSource
from survey.images.spec import parse_source
from survey.model.inject import inject
from survey.sky.bands import BAND_NAMES
from survey.sky.fields import FieldRequest

TRUTH_FILENAME = "injected_halos.ecsv"
"""The ground truth beside the injected sets."""

MOCK_FIELD_WIDTH_DEG = 3.0
"""Side of a mock field rendered around one injected halo."""

GRID_MARGIN_DEG = 0.6
"""Grid halos keep this far inside a set's smallest band image: every window on them gets a full cut-out."""


@dataclass(frozen=True)
class Grid:
    """Halos of every flux and size, placed at random on each image set.

    Attributes
    ----------
    flux_150mhz_jy : tuple of float
        Fluxes at 150 MHz, Jy.
    r_e_arcmin : tuple of float
        e-folding radii, arcmin.
    per_set : int
        Halos per image set (cycling through the flux x size cells).
    min_separation_deg : float
        Halos of one set stay this far apart.
    """

    flux_150mhz_jy: tuple[float, ...]
    r_e_arcmin: tuple[float, ...]
    per_set: int = 4
    min_separation_deg: float = 0.5


def parse_grid(text: str, *, per_set: int) -> Grid:
    """``FLUXES:SIZES`` (comma-separated Jy and arcmin), e.g. ``0.4,0.8,1.6:1,2,3``.

    >>> parse_grid("0.4,0.8:1,3", per_set=2)
    Grid(flux_150mhz_jy=(0.4, 0.8), r_e_arcmin=(1.0, 3.0), per_set=2, min_separation_deg=0.5)
    """
    fluxes, _, sizes = text.partition(":")
    try:
        grid = Grid(tuple(float(v) for v in fluxes.split(",")), tuple(float(v) for v in sizes.split(",")), per_set)
    except ValueError:
        raise BadInputError(f"--grid {text!r}", "expected FLUXES:SIZES, e.g. 0.4,0.8,1.6:1,2,3 (Jy at 150 MHz : arcmin)") from None
    if min(grid.flux_150mhz_jy) <= 0 or min(grid.r_e_arcmin) <= 0 or per_set < 1:
        raise BadInputError(f"--grid {text!r}", "fluxes, sizes and --per-set must be positive")
    return grid


def grid_halos(grid: Grid, *, centre: tuple[float, float], half_width_deg: float, rng: np.random.Generator,
               prefix: str) -> list[Halo]:
    """``grid.per_set`` halos within a square of ``half_width_deg`` around ``centre``, ``min_separation_deg`` apart.

    Parameters
    ----------
    grid : Grid
        Fluxes, sizes and count.
    centre : tuple of float
        (ra, dec) of the set, degrees.
    half_width_deg : float
        Half the side of the square the halos may occupy.
    rng : numpy.random.Generator
        Source of positions, shapes and the order of the cells.
    prefix : str
        Names are ``<prefix>-<i>``.

    Returns
    -------
    list of Halo
        Round to 1.0-0.6 axis ratio, random position angle, alpha -1.3 +- 0.2, no sub-structure.
    """
    cells = list(itertools.product(grid.flux_150mhz_jy, grid.r_e_arcmin))
    offset = int(rng.integers(len(cells)))
    ra0, dec0 = centre
    placed: list[tuple[float, float]] = []
    halos = []
    for attempt in range(200 * grid.per_set):
        if len(halos) == grid.per_set:
            break
        dx, dy = rng.uniform(-half_width_deg, half_width_deg, 2)
        ra, dec = (ra0 + dx / np.cos(np.radians(dec0 + dy))) % 360.0, dec0 + dy
        if any(np.hypot((ra - r) * np.cos(np.radians(dec)), dec - d) < grid.min_separation_deg for r, d in placed):
            continue
        flux, r_e = cells[(offset + len(halos)) % len(cells)]
        placed.append((ra, dec))
        halos.append(Halo(float(ra), float(dec), flux, r_e, axis_ratio=float(rng.uniform(0.6, 1.0)),
                          position_angle_deg=float(rng.uniform(0, 180)),
                          spectral_index=float(np.clip(rng.normal(HALO_SPECTRAL_INDEX, 0.2), -2.2, -0.6)),
                          name=f"{prefix}-{len(halos)}"))
    return halos


def _set_halos(image_set: ImageSet, *, halos: Sequence[Halo] | None, grid: Grid | None, rng: np.random.Generator
               ) -> list[Halo]:
    if halos is not None:
        ra = np.array([h.ra_deg for h in halos])
        dec = np.array([h.dec_deg for h in halos])
        on_set = np.logical_and.reduce([f.contains(ra, dec) for f in image_set.files.values()]) if len(halos) else []
        return [h for h, keep in zip(halos, on_set) if keep]
    half = min(0.5 * min(f.shape) * pixel_scale_deg(f.wcs) for f in image_set.files.values()) - GRID_MARGIN_DEG
    if half <= 0:
        return []
    prefix = image_set.name.replace(" ", "_")
    return grid_halos(grid, centre=image_set.centre_radec, half_width_deg=half, rng=rng, prefix=prefix)


def inject_directory(directory: str | Path, out: str | Path, *, halos: Sequence[Halo] | None = None,
                     grid: Grid | None = None, seed: int = 0) -> Table:
    """Inject halos into every complete image set under ``directory`` and write them under ``out``.

    Parameters
    ----------
    directory : str or Path
        The input ``fits:DIR``.
    out : str or Path
        Output directory (created); the sets keep their relative folders and file names.
    halos : sequence of Halo, optional
        Halos to inject, each into the sets it falls on.
    grid : Grid, optional
        Or a grid placed at random on every set.
    seed : int
        Seeds the grid's placement and the restored noise.

    Returns
    -------
    astropy.table.Table
        The truth: ``halo_table`` columns plus ``set`` (the set's name) and ``folder``.
    """
    source = FitsDirectorySource(directory)
    out = Path(out)
    rng = np.random.default_rng(seed)
    rows = []
    for index, image_set in enumerate(s for s in source.sets if s.complete):
        chosen = _set_halos(image_set, halos=halos, grid=grid, rng=rng)
        if not chosen:
            continue
        images = {band: read_band_file(f.path, band, allow_nonfinite=True) for band, f in image_set.files.items()}
        injected = inject(images, chosen, seed=[seed, index])
        folder = out / image_set.folder.relative_to(source.directory)
        folder.mkdir(parents=True, exist_ok=True)
        for band, image in injected.items():
            write_band_fits(folder / image_set.files[band].path.name, image.data, image.wcs)
        table = halo_table(chosen)
        table["set"] = [image_set.name] * len(table)
        table["folder"] = [str(folder.relative_to(out))] * len(table)
        rows.append(table)
    return _truth(rows, out)


def inject_mock(sky: MockSky, out: str | Path, *, halos: Sequence[Halo], seed: int = 0) -> Table:
    """Render a mock field around each halo, inject it, and write the four bands under ``out``.

    Parameters
    ----------
    sky : MockSky
        The mock sky (its own halos stay in as they are).
    out : str or Path
        Output directory.
    halos : sequence of Halo
        One field each, named ``mock-<i>``.
    seed : int
        Seeds the restored noise (mock images are raw, so the halos are simply added).

    Returns
    -------
    astropy.table.Table
        The truth, as ``inject_directory``'s.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, halo in enumerate(halos):
        request = FieldRequest(f"mock-{index}", halo.ra_deg, halo.dec_deg, MOCK_FIELD_WIDTH_DEG)
        injected = inject(MockSource(sky).read_field(request), [halo], seed=[seed, index])
        for band in BAND_NAMES:
            image = injected[band]
            write_band_fits(out / f"mock-{index}_Gleam{band}.fits", image.data, image.wcs)
        table = halo_table([halo])
        table["set"], table["folder"] = [f"MOCK-{index}"], ["."]
        rows.append(table)
    return _truth(rows, out)


def _truth(rows: list[Table], out: Path) -> Table:
    if not rows:
        raise BadInputError(str(out), "no halo fell on any image set; nothing was written")
    truth = vstack(rows)
    truth.meta["description"] = "halos injected by halo-survey inject (survey.model.injection_sets)"
    truth.write(out / TRUTH_FILENAME, format="ascii.ecsv", overwrite=True)
    return truth


def read_halos(path: str | Path) -> list[Halo]:
    """The halos of a table file (any astropy-readable format with ``Halo``'s columns)."""
    path = Path(path)
    if not path.is_file():
        raise BadInputError(str(path), "no such halo table")
    try:
        return halos_from_table(Table.read(path))
    except (KeyError, ValueError, TypeError) as exc:
        raise BadInputError(str(path), f"not a halo table ({exc}); columns: ra, dec, flux_150mhz_jy, r_e_arcmin, ...") from exc


def inject_command(source: str, out: str | Path, *, halos_file: str | None, grid: str | None, per_set: int,
                   region: str | None, seed: int) -> Table:
    """What ``halo-survey inject`` does; returns the truth table it wrote.

    Parameters
    ----------
    source : str
        ``fits:DIR`` or ``mock[:SEED]``.
    out : str or Path
        Output directory.
    halos_file : str or None
        A halo table (exclusive with ``grid``).
    grid : str or None
        ``FLUXES:SIZES`` (exclusive with ``halos_file``).
    per_set : int
        Grid halos per image set (fits) or in all (mock).
    region : str or None
        Mock grids only: where the halos go (a ``parse_region`` string).
    seed : int
        Seeds placement and noise.

    Returns
    -------
    astropy.table.Table
    """
    if (halos_file is None) == (grid is None):
        raise BadInputError("--halos/--grid", "give exactly one: a halo table, or a grid FLUXES:SIZES")
    spec = parse_source(source)
    halos = read_halos(halos_file) if halos_file is not None else None
    parsed = parse_grid(grid, per_set=per_set) if grid is not None else None
    if spec.kind == "fits":
        return inject_directory(spec.directory, out, halos=halos, grid=parsed, seed=seed)
    if spec.kind != "mock":
        raise BadInputError(f"--source {source}", "inject writes files from fits:DIR or mock[:SEED] only")
    if halos is None:
        from survey.sky.tiling import parse_region

        if region is None or not region.startswith("cone:"):
            raise BadInputError("--region", "a mock grid needs --region cone:RA,DEC,RADIUS_DEG to place its halos in")
        cone = parse_region(region)
        halos = grid_halos(parsed, centre=(cone.ra_deg, cone.dec_deg), half_width_deg=cone.radius_deg / np.sqrt(2),
                           rng=np.random.default_rng(seed), prefix="mock")
    return inject_mock(MockSky(seed=spec.seed), out, halos=halos, seed=seed)
