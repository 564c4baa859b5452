"""Training samples that match the survey's question, cut from real fields by the survey's own input builder.

A blind scan asks, of every window of the sky: is there a halo near my centre? The samples
of one field therefore are

- ``centre``: the source's own centre (label 1 for the paper's halos, 0 otherwise);
- ``injected`` (label 1): a halo of the model of ``survey.images.halos`` injected into the
  field at a random place outside its exclusions (``survey.model.inject``: the clip
  survives), seen by a window up to ``HaloPrior.max_offset_arcmin`` off its centre, with a
  flux from near the noise to bright;
- ``empty`` (label 0): random windows outside the exclusions;
- ``compact`` (label 0): windows on the field's bright compact sources, the hard negatives;
- ``mined`` (label 0): the windows a trained model scores highest outside the exclusions
  (hard-negative mining; ``window_samples``).

Every cut-out goes through ``survey.model.preprocess.clip_field`` and ``cut_windows``, so it
is the model input the survey would build at that position. Pools are drawn per field
with a seed of their own, so a fold takes the samples of its training fields and nothing
of its test fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from survey.images.fitsdir import crop_to_field
from survey.images.halos import Halo, gleam_beam_fwhm_arcmin
from survey.images.mock import exponential_peak_per_flux
from survey.model.inject import inject
from survey.model.preprocess import IMAGE_COLUMN, ClippedField, channels_last, clip_field, cut_windows
from survey.sky.bands import BAND_NAMES
from survey.sky.fields import TARGET_FIELD_WIDTH_DEG, FieldRequest
from training.data import SampleSet
from training.fields import Field

if TYPE_CHECKING:
    from training.generated import GeneratedSet

KINDS = ("centre", "injected", "empty", "compact", "mined", "generated")
"""Sample kinds (``SampleSet.kind``)."""

PRIOR_BAND = "103-134"
"""Band whose noise sets an injected halo's flux from its drawn peak signal-to-noise."""


@dataclass(frozen=True)
class HaloPrior:
    """The distribution injected training halos are drawn from.

    Attributes
    ----------
    peak_snr_range : tuple of float
        Log-uniform range of the beam-convolved peak over the noise in ``PRIOR_BAND``: from
        halos the clip nearly hides to bright ones. The flux follows from it and the field's
        own noise, so every field gets halos near its detection limit.
    r_e_arcmin_range : tuple of float
        Log-uniform range of e-folding radii (0.5' to 6': 0.3 to 2 Mpc halos at z 0.05 to 0.4).
    spectral_index_mean, spectral_index_sigma : float
        Gaussian spectral index (halos: -1.3 +- 0.2), kept within [-2.2, -0.6].
    axis_ratio_range : tuple of float
        Uniform axis ratio.
    turbulence_max : float
        Uniform sub-structure rms in [0, turbulence_max].
    max_offset_arcmin : float
        The window centre lies uniformly within this distance of the halo: a blind scan's
        windows are 3.44' apart at order 10, so the nearest one is up to ~2.4' away.
    """

    peak_snr_range: tuple[float, float] = (2.0, 40.0)
    r_e_arcmin_range: tuple[float, float] = (0.5, 6.0)
    spectral_index_mean: float = -1.3
    spectral_index_sigma: float = 0.2
    axis_ratio_range: tuple[float, float] = (0.5, 1.0)
    turbulence_max: float = 0.5
    max_offset_arcmin: float = 2.5


@dataclass(frozen=True, eq=False)
class Pool:
    """Base samples of some fields, with where each came from.

    Attributes
    ----------
    x : numpy.ndarray
        (N, 64, 64, 4) clipped Jy/beam, band axis last (``training.data``'s layout).
    y : numpy.ndarray
        (N,) int labels.
    field : numpy.ndarray
        (N,) the field (source name) each sample was cut from.
    kind : numpy.ndarray
        (N,) one of ``KINDS``.
    flux_150mhz_jy, r_e_arcmin, offset_arcmin : numpy.ndarray
        (N,) the injected halo's flux and size and the window's distance from it; NaN for
        samples without an injected halo.
    noise : numpy.ndarray
        (N, 4) each band's noise sigma where the sample was cut (the builder's estimate), Jy/beam.
    """

    x: np.ndarray
    y: np.ndarray
    field: np.ndarray
    kind: np.ndarray
    flux_150mhz_jy: np.ndarray
    r_e_arcmin: np.ndarray
    offset_arcmin: np.ndarray
    noise: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def where(self, mask: npt.ArrayLike) -> Pool:
        """The samples where ``mask`` is True."""
        mask = np.asarray(mask, bool)
        return Pool(*(getattr(self, name)[mask] for name in POOL_COLUMNS))

    def of_fields(self, names: Sequence[str]) -> Pool:
        """The samples cut from the fields ``names``."""
        return self.where(np.isin(self.field, list(names)))

    def sample_set(self) -> SampleSet:
        """As a ``training.data.SampleSet`` (source = field), for ``train_classifier``."""
        return SampleSet(self.x, self.y, self.field, self.kind, self.noise)


POOL_COLUMNS = ("x", "y", "field", "kind", "flux_150mhz_jy", "r_e_arcmin", "offset_arcmin", "noise")


def concat(pools: Sequence[Pool]) -> Pool:
    """One pool of all samples of ``pools``, in order."""
    pools = [p for p in pools if len(p)]
    if not pools:
        return empty_pool()
    return Pool(*(np.concatenate([getattr(p, name) for p in pools]) for name in POOL_COLUMNS))


def empty_pool() -> Pool:
    """A pool of no samples."""
    nan = np.zeros(0)
    return Pool(np.zeros((0, 64, 64, 4), np.float32), np.zeros(0, int), np.zeros(0, str), np.zeros(0, str), nan, nan,
                nan, np.zeros((0, 4), np.float32))


def _pool(x: np.ndarray, *, label: int, field: str, kind: str, noise: np.ndarray, flux=None, r_e=None,
          offset=None) -> Pool:
    n = len(x)
    missing = np.full(n, np.nan)
    return Pool(x.astype(np.float32), np.full(n, label), np.full(n, field, dtype=object).astype(str),
                np.full(n, kind, dtype=object).astype(str), missing if flux is None else np.asarray(flux, float),
                missing if r_e is None else np.asarray(r_e, float), missing if offset is None else np.asarray(offset, float),
                np.broadcast_to(np.asarray(noise, np.float32), (n, 4)).copy())


def generated_samples(generated: GeneratedSet, *, n: int | None = None, seed: int = 0) -> Pool:
    """Halos drawn by a generative model, as label-1 samples of kind ``"generated"`` (no field, no injection).

    Parameters
    ----------
    generated : GeneratedSet
        A set whose generator never saw the fold's test sources (``training.generated.choose_for_fold``).
    n : int, optional
        How many, drawn without replacement (all by default).
    seed : int
        Seeds the draw.

    Returns
    -------
    Pool
        Field ``"KIND:DIRECTORY"``, the set's noise (clip level / 3) for every sample.
    """
    return _pool(generated.draw(n, seed=seed), label=1, field=f"{generated.kind}:{generated.directory.name}", kind="generated",
                 noise=generated.noise)


def band_noise(clipped: ClippedField) -> np.ndarray:
    """(4,) each band's noise sigma as the builder estimated it, Jy/beam."""
    return np.array([clipped.clipped[b].noise.sigma for b in BAND_NAMES], np.float32)


def window_samples(field: Field, ra_deg: npt.ArrayLike, dec_deg: npt.ArrayLike, *, label: int, kind: str) -> Pool:
    """The field's own cut-outs at some positions, as samples of one label and kind.

    Parameters
    ----------
    field : Field
        The field (its clipped bands).
    ra_deg, dec_deg : array_like
        Window centres, degrees.
    label : int
        Their label.
    kind : str
        Their kind (``KINDS``).

    Returns
    -------
    Pool
    """
    x = channels_last(cut_windows(field.clipped, ra_deg, dec_deg)[IMAGE_COLUMN])
    return _pool(x, label=label, field=field.name, kind=kind, noise=band_noise(field.clipped))


def centre_sample(field: Field) -> Pool:
    """The field's centre: the paper's labelled cut-out of its source."""
    return window_samples(field, [field.ra_deg], [field.dec_deg], label=field.label, kind="centre")


def empty_samples(field: Field, n: int, rng: np.random.Generator) -> Pool:
    """``n`` random usable windows outside the exclusions (label 0), with up to 1.7' jitter off the window grid.

    Parameters
    ----------
    field : Field
        The field.
    n : int
        Windows wanted (fewer if the field has fewer).
    rng : numpy.random.Generator
        Source of the draws.

    Returns
    -------
    Pool
    """
    allowed = np.flatnonzero(~field.excluded)
    chosen = rng.choice(allowed, size=min(n, allowed.size), replace=False)
    ra, dec = jitter(field.ra_win[chosen], field.dec_win[chosen], 1.7, rng)
    return window_samples(field, ra, dec, label=0, kind="empty")


def compact_samples(field: Field, n: int, rng: np.random.Generator) -> Pool:
    """Up to ``n`` windows on the field's bright compact sources (label 0), up to 1.7' off them.

    Parameters
    ----------
    field : Field
        The field.
    n : int
        Windows wanted (at most one per compact source).
    rng : numpy.random.Generator
        Source of the draws.

    Returns
    -------
    Pool
    """
    if field.compact_ra.size == 0:
        return empty_pool()
    chosen = rng.choice(field.compact_ra.size, size=min(n, field.compact_ra.size), replace=False)
    ra, dec = jitter(field.compact_ra[chosen], field.compact_dec[chosen], 1.7, rng)
    return window_samples(field, ra, dec, label=0, kind="compact")


def jitter(ra_deg: np.ndarray, dec_deg: np.ndarray, radius_arcmin: float, rng: np.random.Generator
           ) -> tuple[np.ndarray, np.ndarray]:
    """Positions moved uniformly within ``radius_arcmin`` (flat-sky offsets; GLEAM stays below |Dec| 80 deg).

    Parameters
    ----------
    ra_deg, dec_deg : numpy.ndarray
        Positions, degrees.
    radius_arcmin : float
        Largest move.
    rng : numpy.random.Generator
        Source of the moves.

    Returns
    -------
    ra_deg, dec_deg : numpy.ndarray
        The moved positions.
    """
    n = np.size(ra_deg)
    r = radius_arcmin / 60.0 * np.sqrt(rng.random(n))
    angle = rng.uniform(0, 2 * np.pi, n)
    dec = np.asarray(dec_deg, float) + r * np.cos(angle)
    ra = (np.asarray(ra_deg, float) + r * np.sin(angle) / np.cos(np.radians(dec))) % 360.0
    return ra, dec


def draw_halo(field: Field, prior: HaloPrior, rng: np.random.Generator, *, name: str = "") -> Halo:
    """A halo of ``prior`` at a random usable window outside the field's exclusions (flux from the field's noise).

    Parameters
    ----------
    field : Field
        Where the halo goes; its noise in ``PRIOR_BAND`` turns the drawn peak SNR into a flux.
    prior : HaloPrior
        The distribution.
    rng : numpy.random.Generator
        Source of the draws.
    name : str
        The halo's name.

    Returns
    -------
    Halo
    """
    allowed = np.flatnonzero(~field.excluded)
    at = int(rng.choice(allowed))
    ra, dec = jitter(field.ra_win[at : at + 1], field.dec_win[at : at + 1], 1.7, rng)
    r_e = float(np.exp(rng.uniform(*np.log(prior.r_e_arcmin_range))))
    snr = float(np.exp(rng.uniform(*np.log(prior.peak_snr_range))))
    alpha = float(np.clip(rng.normal(prior.spectral_index_mean, prior.spectral_index_sigma), -2.2, -0.6))
    band = field.clipped.images[PRIOR_BAND].band
    peak_per_jy = float(exponential_peak_per_flux(r_e_arcmin=r_e, beam_fwhm_arcmin=gleam_beam_fwhm_arcmin(band.centre_mhz)))
    band_flux = snr * field.clipped.clipped[PRIOR_BAND].noise.sigma / peak_per_jy
    flux_150 = band_flux / (band.centre_mhz / 150.0) ** alpha
    return Halo(float(ra[0]), float(dec[0]), flux_150, r_e, axis_ratio=float(rng.uniform(*prior.axis_ratio_range)),
                position_angle_deg=float(rng.uniform(0, 180)), spectral_index=alpha,
                turbulence=float(rng.uniform(0, prior.turbulence_max)), seed=int(rng.integers(1 << 31)), name=name)


INJECTION_FIELD_WIDTH_DEG = TARGET_FIELD_WIDTH_DEG + 0.2
"""Crop around an injected halo: a target's field plus room for the window's offset."""


def injected_cutouts(field: Field, halos: Sequence[Halo], windows: Sequence[tuple[float, float]], *,
                     seed: int) -> np.ndarray:
    """The cut-outs at ``windows`` after injecting ``halos`` into a crop of the field around each window.

    Injection works on the file as read (clipped), so the crop is taken from the field's
    band images, injected (``survey.model.inject``), clipped by the shared builder and cut:
    the pixels a survey of the injected file would give at that window.

    Parameters
    ----------
    field : Field
        The background.
    halos : sequence of Halo
        One halo per window.
    windows : sequence of (float, float)
        Window centres (ra, dec), degrees.
    seed : int
        Seeds the restored noise (each window draws its own stream).

    Returns
    -------
    x : numpy.ndarray
        (N, 64, 64, 4) clipped Jy/beam, band axis last.
    noise : numpy.ndarray
        (N, 4) each band's noise as the builder estimated it on the injected crop.
    """
    out = np.empty((len(windows), 64, 64, 4), np.float32)
    noise = np.empty((len(windows), 4), np.float32)
    for i, (halo, (ra, dec)) in enumerate(zip(halos, windows)):
        request = FieldRequest(f"{field.name} injection {i}", ra, dec, INJECTION_FIELD_WIDTH_DEG)
        crop = {band: crop_to_field(image, request) for band, image in field.clipped.images.items()}
        injected = inject(crop, [halo], seed=[seed, i])
        clipped = clip_field(injected, key=request.key)
        out[i] = channels_last(cut_windows(clipped, ra, dec)[IMAGE_COLUMN])[0]
        noise[i] = band_noise(clipped)
    return out, noise


def injected_samples(field: Field, n: int, prior: HaloPrior, rng: np.random.Generator) -> Pool:
    """``n`` injected halos in the field (label 1), each seen by a window within ``prior.max_offset_arcmin``.

    Parameters
    ----------
    field : Field
        The background.
    n : int
        Halos to inject, one sample each.
    prior : HaloPrior
        Their distribution.
    rng : numpy.random.Generator
        Source of every draw.

    Returns
    -------
    Pool
        With each halo's flux, size and the window's offset.
    """
    halos = [draw_halo(field, prior, rng, name=f"{field.name}-inj{i}") for i in range(n)]
    centres = [jitter(np.array([h.ra_deg]), np.array([h.dec_deg]), prior.max_offset_arcmin, rng) for h in halos]
    windows = [(float(ra[0]), float(dec[0])) for ra, dec in centres]
    offsets = [angular_offset_arcmin(h, w) for h, w in zip(halos, windows)]
    x, noise = injected_cutouts(field, halos, windows, seed=int(rng.integers(1 << 31)))
    return _pool(x, label=1, field=field.name, kind="injected", noise=noise, flux=[h.flux_150mhz_jy for h in halos],
                 r_e=[h.r_e_arcmin for h in halos], offset=offsets)


def angular_offset_arcmin(halo: Halo, window: tuple[float, float]) -> float:
    """Distance in arcmin between a halo and a window centre."""
    from survey.sky.geometry import angular_distance_deg

    return float(angular_distance_deg(halo.ra_deg, halo.dec_deg, *window) * 60.0)


@dataclass(frozen=True)
class PoolSizes:
    """How many samples of each kind a field contributes.

    Attributes
    ----------
    injected : int
        Injected halos per field.
    empty : int
        Random empty windows per field.
    compact : int
        Windows on compact sources per field (at most the field's count).
    """

    injected: int = 120
    empty: int = 60
    compact: int = 40


def field_pool(field: Field, *, sizes: PoolSizes, prior: HaloPrior, seed: int) -> Pool:
    """All base samples of one field: its centre, injected halos, empty windows and compact sources.

    Parameters
    ----------
    field : Field
        The field.
    sizes : PoolSizes
        Samples per kind.
    prior : HaloPrior
        Injected halos' distribution.
    seed : int
        Seeds this field's draws (combined with the field's name, so a field's pool does
        not depend on which other fields are drawn).

    Returns
    -------
    Pool
    """
    rng = np.random.default_rng([seed, *field.name.encode()])
    return concat([
        centre_sample(field),
        injected_samples(field, sizes.injected, prior, rng),
        empty_samples(field, sizes.empty, rng),
        compact_samples(field, sizes.compact, rng),
    ])

