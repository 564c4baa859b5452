"""Injection into the paper's clipped files (survey.model.inject): the clip survives, the halo goes in as the sky would have it."""

from __future__ import annotations

import numpy as np
import pytest

from survey.images.halos import Halo, halo_pixels
from survey.model.inject import inject, inject_band, restore_clipped_noise
from survey.model.noise import clip_symmetric, estimate_noise
from survey.model.preprocess import IMAGE_COLUMN, clip_field, cut_windows

REAL = ("A0013", "A2744", "AS1063", "ORC 3", "MCXC J0145.2-6033")
"""Well-clipped fields of both classes, north to south."""


@pytest.fixture(scope="module")
def fields(real_sources):
    return [s for s in real_sources if s.name in REAL]


def test_restored_noise_stays_in_the_gap_so_re_clipping_gives_the_file_back(fields):
    for source in fields:
        for image in source.images.values():
            noise = estimate_noise(image.data)
            assert noise.already_clipped
            restored = restore_clipped_noise(image.data, threshold=noise.clip_threshold, beam_sigma_px=2.0,
                                             rng=np.random.default_rng(0))
            np.testing.assert_array_equal(clip_symmetric(restored, noise.clip_threshold), image.data)
            gap = image.data == 0
            assert np.abs(restored[gap]).max() < noise.clip_threshold
            assert restored[gap].std() == pytest.approx(noise.clip_threshold / 3, rel=0.25)


@pytest.mark.parametrize("flux", [0.3, 1.0, 5.0])
def test_an_injected_file_keeps_its_clip_threshold_within_a_few_per_cent(fields, flux):
    for source in fields:
        ra, dec = source.centre_radec
        halo = Halo(ra + 0.3, dec - 0.2, flux_150mhz_jy=flux, r_e_arcmin=3.0)
        injected = inject(source.images, [halo], seed=1)
        for band, image in injected.items():
            before, after = estimate_noise(source.images[band].data), estimate_noise(image.data)
            assert after.already_clipped
            assert after.clip_threshold == pytest.approx(before.clip_threshold, rel=0.03), (source.name, band)


def test_adding_a_halo_to_a_clipped_file_without_restoring_its_noise_breaks_the_threshold(fields):
    """The trap the injection avoids: the halo's faint wings become the smallest pixel."""
    source = fields[0]
    image = source.images["139-170"]
    ra, dec = source.centre_radec
    naive = image.data + halo_pixels(image, [Halo(ra, dec, 1.0, 3.0)]).astype(np.float32)
    estimate = estimate_noise(naive)
    original = estimate_noise(image.data).clip_threshold
    assert not estimate.already_clipped or estimate.clip_threshold < 0.5 * original


def test_a_raw_image_just_gets_the_halo_added(real_sources):
    raw = next(s for s in real_sources if s.name == "A2254").images["103-134"]  # the unclipped file
    assert not estimate_noise(raw.data).already_clipped
    halo = Halo(*next(s for s in real_sources if s.name == "A2254").centre_radec, 1.0, 2.0)
    out = inject_band(raw, [halo], rng=np.random.default_rng(0))
    assert out.clip_threshold is None
    np.testing.assert_allclose(out.image.data, raw.data + out.halo, atol=1e-6)


def test_a_bright_injected_halo_is_what_the_model_input_builder_sees_at_its_centre(fields):
    source = fields[1]
    ra, dec = source.centre_radec
    position = (ra - 0.4 / np.cos(np.radians(dec)), dec + 0.3)  # away from the real halo at the centre
    before = cut_windows(clip_field(source.images, key="before"), *position)[IMAGE_COLUMN][0]
    injected = inject(source.images, [Halo(*position, flux_150mhz_jy=3.0, r_e_arcmin=2.0)], seed=2)
    after = cut_windows(clip_field(injected, key="after"), *position)[IMAGE_COLUMN][0]
    for channel in range(4):
        added = after[channel] - before[channel]
        y, x = np.unravel_index(np.argmax(added), added.shape)
        assert abs(y - 31.5) <= 3 and abs(x - 31.5) <= 3, channel
        assert added.max() > 5 * estimate_noise(source.images[list(source.images)[channel]].data).sigma


def test_injection_is_reproducible_from_its_seed(fields):
    source = fields[2]
    halo = [Halo(*source.centre_radec, 0.5, 2.0)]
    a, b, c = (inject(source.images, halo, seed=s) for s in (5, 5, 6))
    assert all(np.array_equal(a[k].data, b[k].data) for k in a)
    assert any(not np.array_equal(a[k].data, c[k].data) for k in a)
