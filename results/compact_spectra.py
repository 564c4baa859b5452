"""How often a real compact source has a halo's spectrum: the confusion limit of halos under the beam.

    .venv/bin/python results/compact_spectra.py [--data ../shared/data/gleam] [--out results/compact-spectra.md]

The blind protocol recovers only 7-10 of 20 injected halos with r_e = 0.5' (results/blind-cnn-log),
whatever their flux. Such a halo is smaller than GLEAM's 2-4.5' beam: in every band it is a
point source, and only its spectrum (alpha = -1.3 +- 0.2) sets it apart from the compact
sources the classifier must refuse. This measures how far it can:

1. **Real compact sources**: every bright compact source of the 46 real fields
   (``training.fields``: 5x5-pixel peaks >= 8 sigma in 139-170 MHz, outside 15' of clusters
   and halo sources), its peak in each band (Jy/beam, within one 139-170 MHz beam of the
   position; for a point source that is its flux density), and the least-squares spectral
   index over the bands where it survives the 3-sigma clip in all four.
2. **Injected compact halos**: the halo model of the injections (``survey.images.halos``),
   r_e = 0.5' and 1', alpha = -1.3 +- 0.2, round, rendered with each band's beam at its native
   pixel scale and measured the same way: the apparent spectral index a classifier sees.

The overlap of the two distributions is the share of compact sources that look like an
unresolved halo by spectrum alone.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from survey.images.base import tan_wcs, world_to_pixel
from survey.images.halos import Halo, gleam_beam_fwhm_arcmin, render_halos
from survey.sky.bands import BANDS
from survey.sky.groups import overlap_groups
from training.fields import COMPACT_BAND, data_sources, load_fields

FREQS = np.array([b.centre_mhz for b in BANDS])
HALO_ALPHA = (-1.3, 0.2)
STEEP = (-1.1, -1.5)


def spectral_index(peaks: np.ndarray) -> np.ndarray:
    """Least-squares slope of log S against log nu per row of (N, 4) positive peaks."""
    x = np.log10(FREQS) - np.log10(FREQS).mean()
    y = np.log10(peaks)
    return ((y - y.mean(axis=1, keepdims=True)) * x).sum(axis=1) / (x**2).sum()


def band_peaks(field, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """(N, 4) largest clipped pixel within one 139-170 MHz beam of each position, per band (Jy/beam)."""
    radius_deg = gleam_beam_fwhm_arcmin(next(b.centre_mhz for b in BANDS if b.name == COMPACT_BAND)) / 60.0
    out = np.zeros((ra.size, len(BANDS)))
    for j, band in enumerate(BANDS):
        pixels = field.clipped.clipped[band.name].pixels
        x, y = world_to_pixel(field.clipped.images[band.name].wcs, ra, dec)
        r = int(np.ceil(radius_deg / band.pixel_deg))
        for i, (xi, yi) in enumerate(zip(np.rint(x).astype(int), np.rint(y).astype(int))):
            box = pixels[max(yi - r, 0):yi + r + 1, max(xi - r, 0):xi + r + 1]
            out[i, j] = box.max() if box.size else 0.0
    return out


def halo_indices(r_e_arcmin: float, n: int, seed: int = 0) -> np.ndarray:
    """Apparent spectral indices of ``n`` round halos of ``r_e_arcmin`` (1 Jy at 150 MHz), alpha drawn as injected."""
    rng = np.random.default_rng(seed)
    alphas = rng.normal(*HALO_ALPHA, size=n)
    peaks = np.zeros((n, len(BANDS)))
    for j, band in enumerate(BANDS):
        size = 129
        wcs = tan_wcs(ra_deg=180.0, dec_deg=-30.0, pixel_deg=band.pixel_deg, shape=(size, size))
        for i, alpha in enumerate(alphas):
            halo = Halo(180.0, -30.0, 1.0, r_e_arcmin, spectral_index=float(alpha))
            image = render_halos((size, size), wcs, [halo], freq_mhz=band.centre_mhz, pixel_deg=band.pixel_deg,
                                 beam_fwhm_arcmin=gleam_beam_fwhm_arcmin(band.centre_mhz))
            peaks[i, j] = image.max()
    return spectral_index(peaks)


def share(values: np.ndarray, low: float, high: float) -> str:
    inside = np.count_nonzero((values <= low) & (values >= high))
    return f"{inside} of {values.size} ({inside / values.size:.0%})"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path("../shared/data/gleam"))
    p.add_argument("--out", type=Path, default=Path("results/compact-spectra.md"))
    args = p.parse_args(argv)
    sources = data_sources(args.data)
    positions = np.array([s.centre_radec for s in sources])
    fields = load_fields(sources, overlap_groups(positions[:, 0], positions[:, 1]))
    peaks = np.concatenate([band_peaks(f, f.compact_ra, f.compact_dec) for f in fields])
    detected = np.all(peaks > 0, axis=1)
    real = spectral_index(peaks[detected])
    halos = {r_e: halo_indices(r_e, 200) for r_e in (0.5, 1.0)}
    q = lambda v: f"{np.median(v):+.2f} [{np.percentile(v, 16):+.2f}, {np.percentile(v, 84):+.2f}]"  # noqa: E731
    halo_range = (np.percentile(halos[0.5], 84), np.percentile(halos[0.5], 16))
    lines = [
        "# Compact sources with a halo's spectrum (the confusion limit under the beam)", "",
        f"Command: `.venv/bin/python results/compact_spectra.py {' '.join(sys.argv[1:])}` (module docstring: method).",
        "",
        f"Real compact sources of the {len(fields)} fields: {peaks.shape[0]}, of which {detected.sum()} survive the "
        "3-sigma clip in all four bands (the rest have no four-band spectrum here).", "",
        "| set | apparent spectral index, median [16th, 84th percentile] | alpha <= -1.1 | in the r_e = 0.5' halos' "
        f"16-84 % range [{halo_range[1]:+.2f}, {halo_range[0]:+.2f}] |",
        "|---|---|---|---|",
        f"| real compact sources (n = {real.size}) | {q(real)} | {share(real, -1.1, -9)} | "
        f"{share(real, *halo_range)} |",
    ]
    for r_e, values in halos.items():
        lines.append(f"| injected halos, r_e = {r_e:g}' (n = {values.size}, alpha {HALO_ALPHA[0]} +- {HALO_ALPHA[1]}) | "
                     f"{q(values)} | {share(values, -1.1, -9)} | {share(values, *halo_range)} |")
    per_field = real.size / len(fields)
    lines += ["", f"A field holds {per_field:.1f} such compact sources with a four-band spectrum on average; "
              f"{np.mean((real <= halo_range[0]) & (real >= halo_range[1])) * per_field:.1f} of them per field "
              "have a spectrum inside the compact halos' central range, against at most one halo.", ""]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
