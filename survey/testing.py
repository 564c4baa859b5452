"""Synthetic images for tests and examples (library code, like photutils.datasets).

Downstream users testing their own pipelines can reuse these.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from survey.sky.bands import BANDS, Band


def make_wcs(*, ra_deg: float, dec_deg: float, pixel_deg: float, shape: tuple[int, int], crpix: tuple[float, float] | None = None) -> WCS:
    """A 2-D RA---TAN/DEC--TAN WCS; by default the reference pixel is the image centre."""
    ny, nx = shape
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra_deg, dec_deg]
    wcs.wcs.crpix = list(crpix) if crpix else [(nx + 1) / 2.0, (ny + 1) / 2.0]
    wcs.wcs.cdelt = [-pixel_deg, pixel_deg]
    return wcs


def make_noise_image(shape: tuple[int, int], *, sigma: float, seed: int | None = None) -> np.ndarray:
    """White Gaussian noise (float32)."""
    return np.random.default_rng(seed).normal(0.0, sigma, shape).astype(np.float32)


def add_point_source(image: np.ndarray, wcs: WCS, *, ra_deg: float, dec_deg: float, flux: float, fwhm_px: float = 3.0) -> None:
    """Add a Gaussian point source at a sky position, in place."""
    x, y = wcs.all_world2pix([[ra_deg, dec_deg]], 0)[0]
    yy, xx = np.indices(image.shape)
    sigma = fwhm_px / 2.3548
    image += (flux * np.exp(-0.5 * ((xx - x) ** 2 + (yy - y) ** 2) / sigma**2)).astype(image.dtype)


def write_band_fits(path: str | Path, data: np.ndarray, wcs: WCS, *, extra_axes: int = 0) -> Path:
    """Write an image with its WCS; ``extra_axes`` adds degenerate FREQ/STOKES axes like radio cubes."""
    header = wcs.to_header()
    if extra_axes:
        data = data.reshape((1,) * extra_axes + data.shape)
        for i, ctype in enumerate(["FREQ", "STOKES"][:extra_axes], start=3):
            header[f"CTYPE{i}"], header[f"CRVAL{i}"], header[f"CDELT{i}"], header[f"CRPIX{i}"] = ctype, 1.0, 1.0, 1.0
    path = Path(path)
    fits.PrimaryHDU(data=data, header=header).writeto(path, overwrite=True)
    return path


def write_source_set(directory: str | Path, name: str, *, ra_deg: float, dec_deg: float, shape=(120, 120), sigma: float = 0.01,
                     seed: int = 0, bands: tuple[Band, ...] = BANDS, pattern: str = "{name}_Gleam{band}_clipped.fits") -> dict[str, Path]:
    """Write a four-band FITS set like the paper's data (raw noise, each band at its native scale)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for i, band in enumerate(bands):
        wcs = make_wcs(ra_deg=ra_deg, dec_deg=dec_deg, pixel_deg=band.pixel_deg, shape=shape)
        data = make_noise_image(shape, sigma=sigma, seed=seed + i)
        paths[band.name] = write_band_fits(directory / pattern.format(name=name, band=band.name), data, wcs)
    return paths
