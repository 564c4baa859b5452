"""The generative training set: which halos, which labels, which scaling, and the re-clip of samples."""

from __future__ import annotations

import numpy as np
import pytest

from training.halos import PAPER_HALO_TYPE, HaloBatches, band_clip_levels, halo_set, reclip, select_halos

pytestmark = [pytest.mark.training, pytest.mark.realdata]


def test_the_paper_split_gives_18_halos_and_all_gives_23(real_sources):
    assert len(select_halos(real_sources)) == 18
    assert len(select_halos(real_sources, split="all")) == 23
    assert {s.label for s in select_halos(real_sources, split="all")} == {1}


def test_excluded_sources_leave_the_training_set_and_unknown_names_are_refused(real_sources):
    kept = select_halos(real_sources, split="all", exclude=["A2744", "A2751", "AS1121"])  # A2751 is a non-halo
    names = {s.name for s in kept}
    assert len(kept) == 21 and not names & {"A2744", "AS1121"}
    with pytest.raises(ValueError, match=r"cannot exclude \['A9999'\]: no such source"):
        select_halos(real_sources, exclude=["A9999"])
    with pytest.raises(ValueError, match="no halo source left"):
        select_halos(real_sources, exclude=[s.name for s in real_sources])


def test_every_halo_has_a_paper_type_and_type_labels_follow_table_1(real_sources):
    assert {s.name for s in real_sources if s.label == 1} == set(PAPER_HALO_TYPE)
    halos = halo_set(real_sources, condition="type")
    assert halos.vocabulary == ("H", "cH", "mH", "cmH") and halos.n_labels == 4
    label_of = dict(zip(halos.names, halos.labels))
    assert label_of["A2163"] == 0 and label_of["A3399"] == 1 and label_of["A0122"] == 3
    source = halo_set(real_sources, condition="source")
    assert source.vocabulary == source.names and list(source.labels) == list(range(18))
    assert halo_set(real_sources).n_labels == 0


def test_the_scaling_keeps_every_brightness_augmented_copy_in_minus_one_one(real_sources):
    halos = halo_set(real_sources)
    assert halos.normalisation.kind == "log-minmax-sym"
    for factor in (0.9, 1.4):
        scaled = halos.normalisation.apply(halos.images * factor)
        assert scaled.min() >= -1.0 - 1e-6 and scaled.max() <= 1.0 + 1e-6
    x, labels = HaloBatches(halos, 6, seed=0).draw()
    assert x.shape == (6, 64, 64, 4) and x.dtype == np.float32 and labels.shape == (6,)
    assert np.mean(x == halos.normalisation.zero_level) > 0.5  # clipped sky stays exactly at the zero level


def test_a_zero_centred_scaling_maps_clipped_pixels_to_zero_and_keeps_copies_in_range(real_sources):
    paper, centred = halo_set(real_sources), halo_set(real_sources, zero_centred=True)
    assert paper.normalisation.zero_level < -0.1  # the paper's min-max puts the clipped sky off centre
    assert centred.normalisation.zero_level == 0.0
    assert centred.normalisation.min == -centred.normalisation.max
    assert max(-paper.normalisation.min, paper.normalisation.max) == centred.normalisation.max
    for factor in (0.9, 1.4):
        scaled = centred.normalisation.apply(centred.images * factor)
        assert scaled.min() >= -1.0 - 1e-6 and scaled.max() <= 1.0 + 1e-6
        assert max(-scaled.min(), scaled.max()) > 0.9  # the range is used, not padded away
    np.testing.assert_allclose(centred.normalisation.invert(centred.normalisation.apply(centred.images)),
                               centred.images, rtol=1e-4, atol=1e-7)


def test_reclip_zeroes_what_lies_below_each_bands_clip_level_and_keeps_both_signs():
    levels = np.array([1.0, 2.0], np.float32)
    x = np.array([[[[0.5, 2.5], [-1.5, -1.9]]]], np.float32)
    np.testing.assert_array_equal(reclip(x, levels), [[[[0.0, 2.5], [-1.5, 0.0]]]])
    clipped = np.zeros((3, 4, 4, 2), np.float32)
    clipped[0, 0, 0] = [0.3, -0.7]
    clipped[1, 1, 1] = [-0.5, 0.9]
    np.testing.assert_allclose(band_clip_levels(clipped), [0.4, 0.8])
