"""Synthetic images for tests and examples (library code, like photutils.datasets).

Downstream users testing their own pipelines can reuse these. Production code never imports
this module: the WCS and FITS helpers it re-exports (``make_wcs`` is
``survey.images.base.tan_wcs``) live in the image shim.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.wcs import WCS

from survey.images.base import tan_wcs as make_wcs
from survey.images.base import world_to_pixel, write_band_fits
from survey.sky.bands import BANDS, Band

__all__ = ["add_point_source", "make_noise_image", "make_wcs", "write_band_fits", "write_source_set"]


def make_noise_image(shape: tuple[int, int], *, sigma: float, seed: int | None = None) -> np.ndarray:
    """White Gaussian noise (float32).

    Parameters
    ----------
    shape : tuple of int
        Image shape ``(ny, nx)``.
    sigma : float
        Standard deviation, in the image's unit (Jy/beam for band images).
    seed : int, optional
        Seed of the generator; None draws fresh noise.

    Returns
    -------
    numpy.ndarray
        float32 noise of mean 0.
    """
    return np.random.default_rng(seed).normal(0.0, sigma, shape).astype(np.float32)


def add_point_source(image: np.ndarray, wcs: WCS, *, ra_deg: float, dec_deg: float, flux: float, fwhm_px: float = 3.0) -> None:
    """Add a Gaussian point source at a sky position, in place.

    Parameters
    ----------
    image : numpy.ndarray
        2-D image to add to; keeps its dtype.
    wcs : astropy.wcs.WCS
        Celestial WCS of ``image``.
    ra_deg, dec_deg : float
        Position of the source, ICRS degrees.
    flux : float
        Peak value added at the source's centre, in the image's unit (Jy/beam).
    fwhm_px : float
        Full width at half maximum of the Gaussian, in pixels.
    """
    x, y = (float(v[0]) for v in world_to_pixel(wcs, [ra_deg], [dec_deg]))
    yy, xx = np.indices(image.shape)
    sigma = fwhm_px / 2.3548
    image += (flux * np.exp(-0.5 * ((xx - x) ** 2 + (yy - y) ** 2) / sigma**2)).astype(image.dtype)


def write_source_set(directory: str | Path, name: str, *, ra_deg: float, dec_deg: float, shape=(120, 120), sigma: float = 0.01,
                     seed: int = 0, bands: tuple[Band, ...] = BANDS, pattern: str = "{name}_Gleam{band}_clipped.fits") -> dict[str, Path]:
    """Write a four-band FITS set like the paper's data (raw noise, each band at its native scale).

    Parameters
    ----------
    directory : path-like
        Folder to write into (created if needed).
    name : str
        Source name, put into the file names.
    ra_deg, dec_deg : float
        Image centre, ICRS degrees, the same in every band.
    shape : tuple of int
        Image shape ``(ny, nx)`` in every band.
    sigma : float
        Noise standard deviation in Jy/beam.
    seed : int
        Seed of the first band's noise; band ``i`` uses ``seed + i``.
    bands : tuple of Band
        Bands to write, each at its native pixel scale.
    pattern : str
        File name, formatted with ``name`` and ``band`` (the band's name).

    Returns
    -------
    dict of str to Path
        The written file of each band, by band name.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for i, band in enumerate(bands):
        wcs = make_wcs(ra_deg=ra_deg, dec_deg=dec_deg, pixel_deg=band.pixel_deg, shape=shape)
        data = make_noise_image(shape, sigma=sigma, seed=seed + i)
        paths[band.name] = write_band_fits(directory / pattern.format(name=name, band=band.name), data, wcs)
    return paths
