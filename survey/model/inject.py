"""Injecting halos into real GLEAM images, including the paper's already-clipped files, without breaking their clip.

The shared real images are 3-sigma clipped: pixels with |x| < T are exactly zero. Adding a
halo to such a file and letting the preprocessing re-estimate the clip threshold fails
quietly: the threshold is read off the smallest non-zero pixel (``survey.model.noise``), and
a halo's faint wings become that pixel, so T collapses and the clip keeps every wing. The
injection therefore works as the sky would have:

1. restore noise in the zeroed pixels: beam-correlated Gaussian noise of the file's own
   sigma (T / 3), kept inside the gap (-T, T) so that re-clipping the file alone at T gives
   it back exactly;
2. add the halos (``survey.images.halos``: the band's grid, frequency and beam);
3. re-clip at the file's own T.

The re-estimated threshold of an injected file is then the original one (within the
spread of the smallest surviving pixel), and the clip removes from a halo what it would
have removed from a real one. Raw (unclipped) images just get the halos added.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from survey.images.base import BandImage
from survey.images.halos import FWHM_PER_SIGMA, Halo, gleam_beam_fwhm_arcmin, halo_pixels
from survey.images.mock import correlated_noise
from survey.model.noise import CLIP_NSIGMA, clip_symmetric, estimate_noise, no_data_mask

GAP_MARGIN = 1.0 - 1e-6
"""Restored noise stays strictly inside the clip gap: |x| <= GAP_MARGIN * T < T."""


@dataclass(frozen=True, eq=False)
class InjectedBand:
    """One band after injection, and what the injection needed to know about it.

    Attributes
    ----------
    image : BandImage
        The band with the halos in it (clipped again at ``clip_threshold`` if it was clipped).
    clip_threshold : float or None
        The file's own threshold T (Jy/beam), or None for a raw image.
    halo : numpy.ndarray
        The halos alone as the band sees them, Jy/beam (before any clip).
    """

    image: BandImage
    clip_threshold: float | None
    halo: np.ndarray


def restore_clipped_noise(pixels: npt.ArrayLike, *, threshold: float, beam_sigma_px: float,
                          rng: np.random.Generator) -> np.ndarray:
    """A clipped image with noise of sigma ``threshold / 3`` put back in its zeroed pixels, inside the gap.

    Parameters
    ----------
    pixels : array_like
        The clipped image (pixels with |x| < threshold are 0).
    threshold : float
        The clip threshold T of the image, Jy/beam.
    beam_sigma_px : float
        Gaussian sigma of the band's beam in pixels: the noise is correlated on that scale.
    rng : numpy.random.Generator
        Source of the noise.

    Returns
    -------
    numpy.ndarray
        float64 pixels: the surviving pixels unchanged, the zeroed ones (outside no-data
        blocks) noise with |x| < T, so ``clip_symmetric(result, threshold)`` is the input.
    """
    image = np.array(pixels, dtype=np.float64)
    gap = (image == 0) & ~no_data_mask(image, already_clipped=True)
    noise = correlated_noise(image.shape, sigma=threshold / CLIP_NSIGMA, sigma_px=beam_sigma_px, rng=rng)
    limit = GAP_MARGIN * threshold
    image[gap] = np.clip(noise[gap], -limit, limit)
    return image


def inject_band(image: BandImage, halos: Sequence[Halo], *, rng: np.random.Generator,
                beam_fwhm_arcmin: float | None = None) -> InjectedBand:
    """One band with ``halos`` injected: restore, add, re-clip for a clipped file; add for a raw one.

    Parameters
    ----------
    image : BandImage
        The band as read (clipped or raw).
    halos : sequence of Halo
        The halos to inject.
    rng : numpy.random.Generator
        Source of the restored noise.
    beam_fwhm_arcmin : float, optional
        The band's beam; default ``gleam_beam_fwhm_arcmin`` at the band's centre.

    Returns
    -------
    InjectedBand
    """
    beam = gleam_beam_fwhm_arcmin(image.band.centre_mhz) if beam_fwhm_arcmin is None else beam_fwhm_arcmin
    halo = halo_pixels(image, halos, beam_fwhm_arcmin=beam)
    data = np.asarray(image.data)
    finite = np.isfinite(data)
    noise = estimate_noise(data) if finite.any() else None
    origin = f"{image.origin} + {len(halos)} injected halo(s)"
    if noise is None or not noise.already_clipped:
        injected = np.where(finite, data + halo, data).astype(np.float32)
        return InjectedBand(BandImage(image.band, injected, image.wcs, origin), None, halo)
    threshold = noise.clip_threshold
    sigma_px = beam / 60.0 / image.band.pixel_deg / FWHM_PER_SIGMA
    restored = restore_clipped_noise(data, threshold=threshold, beam_sigma_px=sigma_px, rng=rng)
    injected = clip_symmetric(restored + halo, threshold)
    return InjectedBand(BandImage(image.band, injected, image.wcs, origin), threshold, halo)


def inject(images: Mapping[str, BandImage], halos: Sequence[Halo], *, seed: int | Sequence[int] = 0,
           beam_fwhm_arcmin: Mapping[str, float] | None = None) -> dict[str, BandImage]:
    """A field's band images with ``halos`` injected into each (``inject_band``).

    Parameters
    ----------
    images : mapping of str to BandImage
        The field's bands, by band name (as an ImageSource returns them).
    halos : sequence of Halo
        The halos; each band renders them at its own frequency, scale and beam.
    seed : int or sequence of int
        Seeds the restored noise (each band draws its own stream from it).
    beam_fwhm_arcmin : mapping of str to float, optional
        Beam per band name; default GLEAM's (``gleam_beam_fwhm_arcmin``).

    Returns
    -------
    dict of str to BandImage
        The injected bands, same keys.
    """
    seed = [seed] if isinstance(seed, int) else list(seed)
    beams = dict(beam_fwhm_arcmin or {})
    return {name: inject_band(image, halos, rng=np.random.default_rng([*seed, index]),
                              beam_fwhm_arcmin=beams.get(name)).image
            for index, (name, image) in enumerate(images.items())}
