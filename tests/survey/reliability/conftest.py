"""Fixtures of the reliability corpus: bad inputs made on the fly, one local Ray for the package, run helpers.

Every bad input is built here from the synthetic sets of ``survey.testing`` (never a copy
of shared data in the repository). Each test asserts the exit code, a message that names
the file, tile or option, that finished work is kept, and that nothing is written outside
the output directory (``Snapshot``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from survey.cli import main
from survey.sky import healpix
from survey.sky.bands import band_by_name
from survey.testing import make_wcs, write_band_fits, write_source_set
from tests.survey.survey_helpers import local_ray, write_standin

TILE_ORDER = 5
WINDOW_ORDER = 8
"""64 windows a tile: the corpus tests plumbing and messages, not the science, so runs stay fast."""

SET_SHAPE = (120, 120)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return write_standin(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="package")
def ray_shared() -> Iterator[object]:
    """One 2-CPU local Ray for every module of the corpus that needs one (modules ask for it explicitly)."""
    yield from local_ray()


def ray_address(context) -> str:
    """The GCS address of the corpus's Ray, for a ``halo-survey --address`` subprocess to join."""
    return context.address_info["gcs_address"]


# --------------------------------------------------------------------------------------
# Bad image sets
# --------------------------------------------------------------------------------------


def tile_of(ra_deg: float, dec_deg: float) -> int:
    """The order-5 tile holding a position."""
    return int(healpix.ang2pix(TILE_ORDER, [ra_deg], [dec_deg])[0])


def _strip_wcs(path: Path) -> None:
    data = fits.getdata(path)
    fits.PrimaryHDU(data=data).writeto(path, overwrite=True)


def _rewrite(path: Path, change: Callable[[np.ndarray], np.ndarray]) -> None:
    with fits.open(path) as hdul:
        data, header = change(np.array(hdul[0].data)), hdul[0].header.copy()
    fits.PrimaryHDU(data=data, header=header).writeto(path, overwrite=True)


def _with_inf(data: np.ndarray) -> np.ndarray:
    data[58:62, 58:62] = np.inf  # at the centre: the target's cut-out holds them
    data[70, 70] = -np.inf
    return data


def _ten_times_coarser(path: Path, band: str) -> None:
    scale = band_by_name(band).pixel_deg * 10
    with fits.open(path) as hdul:
        data = np.array(hdul[0].data)
        wcs = make_wcs(ra_deg=hdul[0].header["CRVAL1"], dec_deg=hdul[0].header["CRVAL2"], pixel_deg=scale,
                       shape=data.shape)
    write_band_fits(path, data, wcs)


BAD_KINDS: dict[str, tuple[str, str]] = {
    # kind: (band spoiled, text the message must contain)
    "no_wcs_one_band": ("139-170", "has no celestial WCS"),
    "truncated": ("170-231", "is truncated"),
    "not_fits": ("72-103", "is not a readable FITS file"),
    "empty": ("103-134", "is empty (0 bytes)"),
    "missing_band": ("139-170", "has no 139-170 MHz file"),
    "pixel_scale_10x": ("170-231", "times the 170-231 MHz band's native"),
    "all_zero_band": ("103-134", "unusable 103-134 MHz image"),
    "all_nan_band": ("72-103", "unusable 72-103 MHz image"),
    "cube_3d": ("139-170", "is not a 2-D image"),
}
"""Bad sets whose tiles (and targets) must fail, naming the file. Two more kinds are handled
apart: ``no_wcs`` (no band has a WCS: the set cannot be placed on the sky) and
``inf_pixels`` (scored, with the windows touching them flagged ``bad_pixels``)."""


def write_bad_set(directory: Path, name: str, kind: str, *, ra_deg: float, dec_deg: float, seed: int = 0) -> dict[str, Path]:
    """A four-band set like the paper's, spoiled as ``kind`` says; returns its files (a removed one included)."""
    files = write_source_set(directory, name, ra_deg=ra_deg, dec_deg=dec_deg, shape=SET_SHAPE, seed=seed)
    band = BAD_KINDS.get(kind, ("170-231", ""))[0]
    path = files[band]
    if kind == "no_wcs":
        for f in files.values():
            _strip_wcs(f)
    elif kind == "no_wcs_one_band":
        _strip_wcs(path)
    elif kind == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "not_fits":
        path.write_text("this is a README, not an image\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "missing_band":
        path.unlink()
    elif kind == "pixel_scale_10x":
        _ten_times_coarser(path, band)
    elif kind == "all_zero_band":
        _rewrite(path, np.zeros_like)
    elif kind == "all_nan_band":
        _rewrite(path, lambda d: np.full_like(d, np.nan))
    elif kind == "cube_3d":
        _rewrite(path, lambda d: np.stack([d, d]))
    elif kind == "inf_pixels":
        _rewrite(files["170-231"], _with_inf)
    elif kind != "good":
        raise ValueError(kind)
    return files


# --------------------------------------------------------------------------------------
# Running and checking
# --------------------------------------------------------------------------------------


@dataclass
class Result:
    """What one ``halo-survey`` call did."""

    rc: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def run_cli(argv: list) -> Result:
    """``halo-survey ARGV`` in this process (reusing the corpus's Ray when it runs), its output captured."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return Result(rc, out.getvalue(), err.getvalue())


def scan_argv(model: Path, output: Path, *extra, mode: str = "scan") -> list[str]:
    """A fast run: order-5 tiles of 64 windows, no progress bar, no cross-matching."""
    return [mode, "--model", model, "-o", output, "--tile-order", TILE_ORDER, "--window-order", WINDOW_ORDER,
            "--no-progress", "--match-catalogs", "", *extra]


def manifest_of(output: Path) -> dict:
    return json.loads((output / "manifest.json").read_text())


class Snapshot:
    """Every file under ``root`` (path, size, mtime) except under ``inside``: nothing may change there."""

    def __init__(self, root: Path, *, inside: Path | None = None):
        self.root, self.inside = Path(root), inside
        self.files = self._take()

    def _take(self) -> dict[str, tuple[int, int]]:
        found = {}
        for dirpath, _, names in os.walk(self.root):
            for name in names:
                path = Path(dirpath) / name
                if self.inside is not None and (path == self.inside or self.inside in path.parents):
                    continue
                stat = path.stat()
                found[str(path.relative_to(self.root))] = (stat.st_size, stat.st_mtime_ns)
        return found

    def assert_unchanged(self) -> None:
        """Nothing outside ``inside`` was created, changed or deleted."""
        now = self._take()
        assert now == self.files, {"added": sorted(set(now) - set(self.files)),
                                   "removed": sorted(set(self.files) - set(now)),
                                   "changed": sorted(k for k in now if k in self.files and now[k] != self.files[k])}


def done_tiles(output: Path) -> set[int]:
    """Tiles with a done marker in the run's work catalogue (an unfinished run)."""
    done = output / "work" / "detections" / "done"
    return {int(p.name.split("_")[1]) for p in done.glob("*_done")} if done.is_dir() else set()


def candidate_tiles(output: Path) -> set[int]:
    """Tiles with rows in the finished candidate catalogue."""
    import pyarrow.parquet as pq

    files = list((output / "candidates" / "dataset").rglob("Npix=*.parquet"))
    return {int(t) for f in files for t in pq.read_table(f, columns=["tile"]).column("tile").to_pylist()}
