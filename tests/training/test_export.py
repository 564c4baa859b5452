"""Export to ONNX: parity with Keras on real GLEAM cut-outs, dynamic batch, provenance, card.

Each architecture is trained for a few steps on 8 real sources (4 halos, 4 non-halos) so
that parity is checked on a model whose outputs actually depend on the input, then exported
once per module and run both through onnxruntime directly and through the survey's
``OnnxClassifier``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.training, pytest.mark.realdata]
keras = pytest.importorskip("keras")

import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from astropy.io import fits  # noqa: E402

from survey.exceptions import OnnxParityError  # noqa: E402
from survey.model.infer import CPU, OnnxClassifier  # noqa: E402
from survey.model.modelcard import ARCHITECTURES, TrainingRecord, card_path_for, load_model_card  # noqa: E402
from survey.model.normalisation import Normalisation  # noqa: E402
from survey.sky.bands import BAND_NAMES  # noqa: E402
from training.export import export_with_card, to_onnx, verify_onnx  # noqa: E402
from training.models import ClassifierConfig, build_classifier  # noqa: E402

# The three file-name patterns of the data README: "abell_0122_Gleam103-134_clipped.fits",
# "3c 136.1_GLEAM_103-134MHz_clipped.fits" and "abell_s1063Gleam72-103_clipped.fits".
BAND_FILE = re.compile(r"^(?P<source>.+?)_?gleam_?(?P<band>\d+-\d+)(?:mhz)?_clipped\.fits$", re.IGNORECASE)
CENTRE = slice(118, 182)  # central 64 px of a 300 px image with CRPIX 150.5 (data README)
SOURCES_PER_CLASS = 4


def band_files(folder: Path) -> dict[str, dict[str, Path]]:
    """source -> band -> file, for the sources of one data folder."""
    sources: dict[str, dict[str, Path]] = {}
    for path in folder.glob("*.fits"):
        match = BAND_FILE.match(path.name)
        if match:
            sources.setdefault(match["source"], {})[match["band"]] = path
    return sources


def central_stack(files: dict[str, Path]) -> np.ndarray:
    """(64, 64, 4) float32: the central 64x64 of each band, in survey band order."""
    planes = []
    for band in BAND_NAMES:
        data = fits.getdata(files[band])
        assert data.shape == (300, 300)
        planes.append(np.asarray(data[CENTRE, CENTRE], dtype=np.float32))
    return np.stack(planes, axis=-1)


@pytest.fixture(scope="module")
def real_batch(gleam_dir: Path) -> tuple[np.ndarray, np.ndarray, Normalisation]:
    """8 real sources' cut-outs, min-max normalised, with one-hot labels (halo = column 1)."""
    stacks, labels = [], []
    for folder, label in (("TRAIN_DATA_1", 1), ("TRAIN_DATA_0", 0)):
        sources = band_files(gleam_dir / folder)
        for name in sorted(sources)[:SOURCES_PER_CLASS]:
            stacks.append(central_stack(sources[name]))
            labels.append(label)
    cutouts = np.stack(stacks)
    normalisation = Normalisation.fit(cutouts, kind="minmax")
    return normalisation.apply(cutouts), keras.utils.to_categorical(labels, 2), normalisation


@pytest.fixture(scope="module", params=ARCHITECTURES)
def exported(request, real_batch, tmp_path_factory):
    """(model, onnx path) per architecture: a few training steps, then export with its card."""
    x, y, normalisation = real_batch
    model = build_classifier(request.param, ClassifierConfig(seed=11))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy")
    model.fit(x, y, epochs=3, batch_size=len(x), verbose=0, shuffle=False)
    record = TrainingRecord(sources=(), protocol="paper", seed=11, epochs=3)
    out_path = tmp_path_factory.mktemp("onnx") / f"{request.param}.onnx"
    export_with_card(model, out_path, normalisation=normalisation, training=record, check_inputs=x)
    return model, out_path


def keras_probs(model, x: np.ndarray) -> np.ndarray:
    return keras.ops.convert_to_numpy(model(x, training=False))


def test_real_batch_is_real(real_batch):
    x, y, _ = real_batch
    assert x.shape == (2 * SOURCES_PER_CLASS, 64, 64, 4) and x.dtype == np.float32
    assert x.min() == 0.0 and x.max() == 1.0 and y[:, 1].sum() == SOURCES_PER_CLASS
    assert len({x[i].tobytes() for i in range(len(x))}) == len(x)


def channels_first(x: np.ndarray) -> np.ndarray:
    """Keras's (N, 64, 64, 4) cut-outs as the file's (N, 4, 64, 64) band planes."""
    return np.ascontiguousarray(np.moveaxis(x, -1, 1))


def test_the_exported_file_takes_the_band_planes_its_card_describes(exported):
    session = ort.InferenceSession(str(exported[1]), providers=[CPU])
    (image,) = session.get_inputs()
    assert image.name == "image" and image.shape[1:] == [4, 64, 64]
    assert load_model_card(exported[1]).input_spec.layout == "NCHW"


def test_parity_with_keras_on_real_cutouts(exported, real_batch):
    model, onnx_path = exported
    x, _, _ = real_batch
    halo = keras_probs(model, x)[:, 1]
    assert np.ptp(halo) > 1e-3, "Keras outputs barely vary: parity would be checked on a constant"
    assert verify_onnx(model, onnx_path, x, atol=1e-4) <= 1e-4


@pytest.mark.parametrize("n", [1, 7])
def test_batch_dimension_is_dynamic(exported, real_batch, n):
    model, onnx_path = exported
    session = ort.InferenceSession(str(onnx_path), providers=[CPU])
    assert not isinstance(session.get_inputs()[0].shape[0], int)
    x = real_batch[0][:n]
    (probs,) = session.run(["probs"], {"image": channels_first(x)})
    assert probs.shape == (n, 2)
    np.testing.assert_allclose(probs, keras_probs(model, x), atol=1e-4)


def test_onnx_carries_provenance(exported, real_batch):
    model, onnx_path = exported
    props = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert props["architecture"] == model.name
    assert props["normalisation_id"] == real_batch[2].id
    assert props["halo_survey_version"] and props["opset"] == "17" and props["input_layout"] == "NCHW"


def test_graph_has_no_random_op(exported):
    """The attention model's Gaussian noise must not survive into the inference graph."""
    ops = {node.op_type for node in onnx.load(str(exported[1])).graph.node}
    assert not ops & {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike"}


def test_survey_classifier_runs_the_export(exported, real_batch):
    model, onnx_path = exported
    x, _, normalisation = real_batch
    classifier = OnnxClassifier(onnx_path, providers="cpu")
    assert classifier.provider == CPU
    assert classifier.card == load_model_card(onnx_path) and classifier.card.architecture == model.name
    assert classifier.normalisation == normalisation
    np.testing.assert_allclose(classifier.predict(channels_first(x)), keras_probs(model, x)[:, 1], atol=1e-4)
    assert card_path_for(onnx_path).is_file()


def test_verify_refuses_a_different_model(exported, real_batch):
    model, onnx_path = exported
    other = build_classifier(model.name, ClassifierConfig(seed=99))
    with pytest.raises(OnnxParityError, match=r"ONNX and Keras outputs differ by .* > atol 1e-09"):
        verify_onnx(other, onnx_path, real_batch[0], atol=1e-9)


def test_to_onnx_wants_an_onnx_suffix_and_a_known_architecture(tmp_path):
    model = build_classifier("dense")
    with pytest.raises(ValueError, match=r"model\.bin: the model file must end in \.onnx"):
        to_onnx(model, tmp_path / "model.bin")
    renamed = keras.Model(model.inputs, model.outputs, name="mystery")
    with pytest.raises(ValueError, match=r"cannot tell the architecture of model 'mystery'"):
        to_onnx(renamed, tmp_path / "m.onnx")
