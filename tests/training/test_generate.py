"""Generated cut-outs come back in clipped Jy/beam like real ones, reproducibly, with files that say where they came from."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = [pytest.mark.training, pytest.mark.realdata]


def test_generate_halos_returns_clipped_jy_per_beam_cutouts_of_the_requested_number(smoke_ddpm):
    from training.generate import HaloGenerator, generate_halos

    x = generate_halos(smoke_ddpm["dir"], 5, steps=5, seed=1)
    assert x.shape == (5, 64, 64, 4) and x.dtype == np.float32 and np.all(np.isfinite(x))
    generator = HaloGenerator.from_dir(smoke_ddpm["dir"])
    kept = np.abs(x) > 0
    # Exactly zero below each band's clip level, as real clipped cut-outs are.
    assert np.all(np.abs(x)[kept] >= np.broadcast_to(generator.clip_levels, x.shape)[kept])
    np.testing.assert_array_equal(x, generator.generate(5, steps=5, seed=1))
    raw = generator.generate(5, steps=5, seed=1, clip=False)
    assert np.mean(raw != 0) > np.mean(x != 0)


def test_write_samples_stores_images_labels_normalisation_and_provenance(smoke_wgan, tmp_path):
    from astropy.io import fits

    from training.generate import HaloGenerator, read_samples, write_samples

    generator = HaloGenerator.from_dir(smoke_wgan["dir"])
    labels = generator.labels_for(6, label="cmH")
    x, labels = generator.sample_normalised(6, labels=labels, seed=0)
    paths = write_samples(tmp_path / "out", generator, x, labels, settings={"sampler": "generator"}, fits=True)
    images, meta = read_samples(tmp_path / "out")
    np.testing.assert_array_equal(images, generator.to_jy(x))
    assert meta["model"]["kind"] == "wgan" and meta["model"]["data"]["condition"] == "type"
    with np.load(paths["npz"]) as data:
        assert list(data["label_names"]) == ["cmH"] * 6
        assert json.loads(str(data["normalisation"]))["kind"] == "log-minmax-sym"
    with fits.open(paths["fits"]) as hdul:
        assert hdul["BAND_72-103"].data.shape == (6, 64, 64) and hdul["BAND_72-103"].header["BUNIT"] == "Jy/beam"
    assert paths["png"].stat().st_size > 0
    with pytest.raises(ValueError, match="label 'XX' is not one of the model's: H, cH, mH, cmH"):
        generator.labels_for(2, label="XX")


def test_a_directory_without_a_model_is_refused_with_its_name(tmp_path):
    from training.generate import generate_halos

    with pytest.raises(FileNotFoundError, match="is not a generative model directory"):
        generate_halos(tmp_path, 2)
