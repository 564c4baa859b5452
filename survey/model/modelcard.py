"""The model card: the contract between a trained classifier and the survey that runs it.

A classifier ships as two files side by side, ``NAME.onnx`` and ``NAME.card.json``. The card
says what the ONNX file is (its sha256), what it was trained on (every source file with its
sha256), how its inputs were normalised, and what input it expects. The survey refuses to run
a model whose card is missing, malformed, describes another file, or expects an input the
survey does not produce: a silent mismatch in band order or pixel scale would give plausible
but meaningless scores over the whole sky.

No TensorFlow here (the survey never imports it); training builds cards with ``build_card``.

JSON schema, ``card_version`` 2::

    {"card_version": 2, "name": str, "architecture": "cnn" | "attention" | "dense",
     "onnx_sha256": hex str,
     "training": {"sources": [{"name", "label", "split_or_group",
                               "files": [{"path" (relative), "sha256"}]}],
                  "protocol": str, "seed": int, "epochs": int, "augment": {...}},
     "normalisation": {"kind", "min", "max", "log_scale", "id"},   # survey.model.normalisation.Normalisation
     "input_spec": {"bands", "pixel_arcsec", "cutout_size", "layout", "dtype", "clip",
                    "input_name", "output_name"},
     "metrics": {"paper_protocol": {...}, "grouped_protocol": {...}},
     "threshold": float, "code_version": str, "created": ISO 8601 str,
     "reference": {"recipe", "indices", "probabilities", "atol"}}     # optional

``reference`` (``survey.model.reference``) holds the probabilities the model gave a few
deterministic inputs when it was exported; the survey checks them whenever it loads the
model, so damaged weights are refused even when the card's sha256 was regenerated. Cards
written before it existed load without it (and without that check);
``halo-train add-reference`` adds it to an existing card.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from survey.exceptions import ModelCardError
from survey.model.normalisation import Normalisation
from survey.model.preprocess import INPUT_LAYOUT
from survey.model.reference import ReferenceOutputs
from survey.sky.bands import BANDS, CUTOUT_SIZE

CARD_VERSION = 2
"""Schema version written into every card; a card with another version is refused.

Version 1 described an NHWC (N, 64, 64, 4) input; version 2 describes the band planes
(N, 4, 64, 64) that the survey actually feeds (``survey.model.preprocess``).
``halo-train upgrade-model`` turns a version-1 model and card into version 2."""

CARD_SUFFIX = ".card.json"
"""``NAME.onnx`` has its card at ``NAME.card.json``."""

INPUT_NAME = "image"
"""Name of the ONNX input: a (N, 4, 64, 64) float32 batch of normalised band planes."""

OUTPUT_NAME = "probs"
"""Name of the ONNX output: (N, 2) softmax probabilities, column 1 = halo."""

HALO_CLASS = 1
"""Column of ``OUTPUT_NAME`` that holds the halo probability (paper section 4.1)."""

DEFAULT_THRESHOLD = 0.95
"""Halo-probability threshold for a candidate (paper sections 5.4.1-5.4.2)."""

ARCHITECTURES = ("cnn", "attention", "dense")
"""The paper's classifiers I, A and D (appendix A, tables A3-A5)."""

PACKAGE_NAME = "halo-survey"


# --------------------------------------------------------------------------------------
# Small helpers shared with training (paths, hashes, versions)
# --------------------------------------------------------------------------------------


def card_path_for(onnx_path: str | Path) -> Path:
    """The card file of a model: ``dir/NAME.onnx`` -> ``dir/NAME.card.json``.

    >>> card_path_for("models/attention.onnx").as_posix()
    'models/attention.card.json'
    """
    onnx_path = Path(onnx_path)
    return onnx_path.with_name(onnx_path.stem + CARD_SUFFIX)


def sha256_file(path: str | Path, *, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks (ONNX files can be tens of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def code_version() -> str:
    """Version of this package, stamped into cards and ONNX metadata for provenance."""
    try:
        return importlib.metadata.version(PACKAGE_NAME)
    except importlib.metadata.PackageNotFoundError:
        # Running from a source tree that was never installed: still say so honestly.
        return "0+unknown"


# --------------------------------------------------------------------------------------
# Card records
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InputSpec:
    """What a classifier expects as input; must equal what the survey produces.

    Attributes
    ----------
    bands : tuple of str
        Channel order of the cut-outs (``survey.sky.bands.BAND_NAMES``).
    pixel_arcsec : tuple of float
        Native pixel scale of each channel, arcsec, rounded to 0.1" (no regridding).
    cutout_size : int
        Side of the square cut-out in pixels.
    layout : str
        Axis order of a batch; ``"NCHW"`` (batch, band, y, x): ``survey.model.preprocess.INPUT_LAYOUT``.
    dtype : str
        Element type of a batch, ``"float32"``.
    clip : str
        Clipping applied before normalisation; ``"symmetric_3sigma"`` (|x| < 3 sigma -> 0).
    input_name, output_name : str
        Names of the ONNX input and output tensors.
    """

    bands: tuple[str, ...]
    pixel_arcsec: tuple[float, ...]
    cutout_size: int
    layout: str
    dtype: str
    clip: str
    input_name: str
    output_name: str

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape of one model input, (n_bands, cutout_size, cutout_size): band planes."""
        return (len(self.bands), self.cutout_size, self.cutout_size)

    def differences(self, other: InputSpec) -> list[str]:
        """Human-readable ``field: mine != other`` lines, empty when the specs agree."""
        return [
            f"{f.name}: {getattr(self, f.name)!r} != {getattr(other, f.name)!r}"
            for f in fields(self)
            if getattr(self, f.name) != getattr(other, f.name)
        ]


def survey_input_spec() -> InputSpec:
    """The input the survey produces: every model card must carry exactly this spec.

    >>> spec = survey_input_spec()
    >>> spec.bands, spec.pixel_arcsec, spec.shape
    (('72-103', '103-134', '139-170', '170-231'), (56.0, 44.0, 34.0, 28.0), (4, 64, 64))
    """
    return InputSpec(
        bands=tuple(band.name for band in BANDS),
        pixel_arcsec=tuple(round(band.pixel_arcsec, 1) for band in BANDS),
        cutout_size=CUTOUT_SIZE,
        layout=INPUT_LAYOUT,
        dtype="float32",
        clip="symmetric_3sigma",
        input_name=INPUT_NAME,
        output_name=OUTPUT_NAME,
    )


@dataclass(frozen=True)
class TrainingFile:
    """One FITS file a model was trained on, with its content hash.

    Attributes
    ----------
    path : str
        Path relative to the data directory (``TRAIN_DATA_1/abell_0122_Gleam72-103_clipped.fits``).
    sha256 : str
        Hex sha256 of the file, so a retraining can prove it used the same data.
    """

    path: str
    sha256: str


@dataclass(frozen=True)
class TrainingSource:
    """One source (four band files) in the training data.

    Attributes
    ----------
    name : str
        Astronomer's name of the source (``A0122``).
    label : int
        1 = halo, 0 = non-halo.
    split_or_group : str
        The split (``train``/``test``) under the paper's protocol, or the group (fold) under
        the grouped protocol that keeps overlapping fields together.
    files : tuple of TrainingFile
        The band files of the source.
    """

    name: str
    label: int
    split_or_group: str
    files: tuple[TrainingFile, ...]


@dataclass(frozen=True)
class TrainingRecord:
    """How a model was trained.

    Attributes
    ----------
    sources : tuple of TrainingSource
        Every source used for training or evaluation.
    protocol : str
        ``"paper"`` (the paper's 80/20 source split) or ``"grouped"`` (leave-groups-out).
    seed : int
        Seed of the run (data shuffling, augmentation, weight initialisation).
    epochs : int
        Epochs trained (before early stopping picked the checkpoint).
    augment : dict
        Free-form description of the augmentation (rotations, flips, scalings, generated).
    command : str
        The one command that trains, calibrates and exports this model from a data
        directory (``halo-train ship ...``), so anyone can retrain it without some fields;
        empty for older cards.
    """

    sources: tuple[TrainingSource, ...]
    protocol: str
    seed: int
    epochs: int
    augment: dict[str, Any] = field(default_factory=dict)
    command: str = ""


@dataclass(frozen=True)
class ModelCard:
    """Everything the survey needs to trust and run one ONNX classifier.

    Attributes
    ----------
    name : str
        Model name; also the file stem of ``NAME.onnx`` / ``NAME.card.json``.
    architecture : str
        One of ``ARCHITECTURES``.
    onnx_sha256 : str
        Hex sha256 of the ONNX file this card describes.
    training : TrainingRecord
        Data, protocol, seed, epochs and augmentation of the run.
    normalisation : survey.model.normalisation.Normalisation
        The global min-max fitted on the training cut-outs, applied unchanged at inference.
    input_spec : InputSpec
        The input the model expects (must equal ``survey_input_spec()``).
    metrics : dict
        Free-form ``{"paper_protocol": {...}, "grouped_protocol": {...}}`` of mean/std values.
    threshold : float
        Halo probability above which a cut-out becomes a candidate.
    code_version : str
        Version of this package that trained and exported the model.
    created : str
        ISO 8601 UTC time the card was made.
    card_version : int
        Schema version (``CARD_VERSION``).
    reference : ReferenceOutputs or None
        The model's probabilities on the reference inputs at export (``survey.model.reference``);
        None in cards made before it existed.
    """

    name: str
    architecture: str
    onnx_sha256: str
    training: TrainingRecord
    normalisation: Normalisation
    input_spec: InputSpec
    metrics: dict[str, Any] = field(default_factory=dict)
    threshold: float = DEFAULT_THRESHOLD
    code_version: str = field(default_factory=code_version)
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    card_version: int = CARD_VERSION
    reference: ReferenceOutputs | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, keys in schema order (``reference`` only when present, so older readers see no new key)."""
        data = asdict(self)
        data["normalisation"] = self.normalisation.to_dict()
        if data["reference"] is None:
            del data["reference"]
        return {"card_version": data.pop("card_version"), **data}

    def to_json(self) -> str:
        """The card as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "<dict>") -> ModelCard:
        """Parse and validate a card dict; ModelCardError names ``where`` and the bad key."""
        return _parse_card(data, where)

    @classmethod
    def from_json(cls, text: str, *, where: str = "<string>") -> ModelCard:
        """Parse and validate card JSON text; ModelCardError names ``where`` and the problem."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ModelCardError(f"{where}: not valid JSON ({err}); re-create the card with write_card") from err
        return _parse_card(data, where)


# --------------------------------------------------------------------------------------
# Parsing and validation (pure: dict in, records out)
# --------------------------------------------------------------------------------------


def _get(data: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """``data[key]`` checked to be a ``kind``; ModelCardError naming the card and key otherwise."""
    if not isinstance(data, dict):
        raise ModelCardError(f"{where}: expected a JSON object, got {type(data).__name__}")
    if key not in data:
        raise ModelCardError(f"{where}: missing key {key!r}; the card does not follow schema {CARD_VERSION}")
    value = data[key]
    # bool is an int in Python but never a valid number in a card.
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        raise ModelCardError(f"{where}: {key!r} must be {_kind_name(kind)}, got {value!r}")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _kind_name(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in _as_tuple(kind))


def _check_keys(data: dict, expected: set[str], where: str) -> None:
    """Refuse unknown keys: a typo in a hand-edited card must not pass silently."""
    unknown = sorted(set(data) - expected)
    if unknown:
        raise ModelCardError(f"{where}: unknown keys {unknown}; schema {CARD_VERSION} has {sorted(expected)}")


def _parse_input_spec(data: Any, where: str) -> InputSpec:
    where = f"{where} input_spec"
    _check_keys(data, {f.name for f in fields(InputSpec)}, where)
    bands = _get(data, "bands", list, where)
    pixels = _get(data, "pixel_arcsec", list, where)
    if not all(isinstance(b, str) for b in bands) or not all(isinstance(p, (int, float)) for p in pixels):
        raise ModelCardError(f"{where}: bands must be strings and pixel_arcsec numbers")
    return InputSpec(
        bands=tuple(bands),
        pixel_arcsec=tuple(float(p) for p in pixels),
        cutout_size=_get(data, "cutout_size", int, where),
        **{name: _get(data, name, str, where) for name in ("layout", "dtype", "clip", "input_name", "output_name")},
    )


def _parse_source(data: Any, where: str) -> TrainingSource:
    files = tuple(
        TrainingFile(path=_get(f, "path", str, where), sha256=_get(f, "sha256", str, where))
        for f in _get(data, "files", list, where)
    )
    return TrainingSource(
        name=_get(data, "name", str, where),
        label=_get(data, "label", int, where),
        split_or_group=_get(data, "split_or_group", str, where),
        files=files,
    )


def _parse_training(data: Any, where: str) -> TrainingRecord:
    where = f"{where} training"
    _check_keys(data, {f.name for f in fields(TrainingRecord)}, where)
    return TrainingRecord(
        sources=tuple(_parse_source(s, f"{where}.sources") for s in _get(data, "sources", list, where)),
        protocol=_get(data, "protocol", str, where),
        seed=_get(data, "seed", int, where),
        epochs=_get(data, "epochs", int, where),
        augment=_get(data, "augment", dict, where),
        command=_get(data, "command", str, where) if "command" in data else "",
    )


def _parse_normalisation(data: Any, where: str) -> Normalisation:
    where = f"{where} normalisation"
    for key in ("kind", "min", "max", "id"):
        _get(data, key, (str,) if key in ("kind", "id") else (int, float), where)
    try:
        return Normalisation.from_dict(data)
    except (ValueError, TypeError) as err:
        raise ModelCardError(f"{where}: {err}; the normalisation was edited after export, re-export") from err


def _parse_reference(data: Any, where: str) -> ReferenceOutputs:
    where = f"{where} reference"
    _check_keys(data, {f.name for f in fields(ReferenceOutputs)}, where)
    indices = _get(data, "indices", list, where)
    probabilities = _get(data, "probabilities", list, where)
    if (not indices or len(indices) != len(probabilities) or not all(isinstance(i, int) for i in indices)
            or not all(isinstance(p, (int, float)) and 0.0 <= p <= 1.0 for p in probabilities)):
        raise ModelCardError(f"{where}: needs as many integer indices as probabilities in [0, 1]; re-create it with "
                             "`halo-train add-reference MODEL.onnx --force`")
    atol = float(_get(data, "atol", (int, float), where))
    if not 0.0 < atol < 1.0:
        raise ModelCardError(f"{where}: atol {atol} must lie strictly between 0 and 1")
    return ReferenceOutputs(recipe=_get(data, "recipe", str, where), indices=tuple(indices),
                            probabilities=tuple(float(p) for p in probabilities), atol=atol)


def _parse_card(data: Any, where: str) -> ModelCard:
    """Validate every key of a card dict and build the ModelCard."""
    version = _get(data, "card_version", int, where)
    if version == 1:
        raise ModelCardError(
            f"{where}: card_version 1 describes an (N, 64, 64, 4) input, but the survey feeds band planes "
            f"(N, 4, 64, 64) and reads card_version {CARD_VERSION}; upgrade the model and its card with "
            "`halo-train upgrade-model MODEL.onnx`"
        )
    if version != CARD_VERSION:
        raise ModelCardError(f"{where}: card_version {version} is not supported (this survey reads {CARD_VERSION})")
    _check_keys(data, {f.name for f in fields(ModelCard)}, where)
    architecture = _get(data, "architecture", str, where)
    if architecture not in ARCHITECTURES:
        raise ModelCardError(f"{where}: architecture {architecture!r} is not one of {ARCHITECTURES}")
    threshold = float(_get(data, "threshold", (int, float), where))
    if not 0.0 < threshold < 1.0:
        raise ModelCardError(f"{where}: threshold {threshold} must lie strictly between 0 and 1")
    created = _get(data, "created", str, where)
    try:
        datetime.fromisoformat(created)
    except ValueError as err:
        raise ModelCardError(f"{where}: created {created!r} is not an ISO 8601 time") from err
    return ModelCard(
        name=_get(data, "name", str, where),
        architecture=architecture,
        onnx_sha256=_get(data, "onnx_sha256", str, where),
        training=_parse_training(_get(data, "training", dict, where), where),
        normalisation=_parse_normalisation(_get(data, "normalisation", dict, where), where),
        input_spec=_parse_input_spec(_get(data, "input_spec", dict, where), where),
        metrics=_get(data, "metrics", dict, where),
        threshold=threshold,
        code_version=_get(data, "code_version", str, where),
        created=created,
        card_version=version,
        reference=_parse_reference(data["reference"], where) if data.get("reference") is not None else None,
    )


# --------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------


def build_card(
    onnx_path: str | Path,
    *,
    architecture: str,
    training: TrainingRecord,
    normalisation: Normalisation,
    metrics: dict[str, Any] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    reference: ReferenceOutputs | None = None,
) -> ModelCard:
    """A card for an exported ONNX file: hashes the file and uses the survey's input spec.

    The card's name is the file stem, so ``load_model_card`` finds it beside the file.

    Parameters
    ----------
    onnx_path : path-like
        The exported model; it must exist, since its sha256 goes into the card.
    architecture : str
        One of ``ARCHITECTURES`` (``"cnn"``, ``"attention"``, ``"dense"``).
    training : TrainingRecord
        Sources, protocol, seed, epochs and augmentation of the run.
    normalisation : Normalisation
        The input scaling fitted on the training cut-outs.
    metrics : dict, optional
        Evaluation results to record (copied); default empty.
    threshold : float
        Halo probability above which the survey makes a window a candidate.
    reference : ReferenceOutputs, optional
        The model's answers on the reference inputs (``survey.model.infer.reference_of``),
        checked whenever the survey loads the model.

    Returns
    -------
    ModelCard
        The validated card (not yet written; ``write_card`` does that).

    Raises
    ------
    ModelCardError
        The card fails validation (e.g. an unknown architecture).
    """
    onnx_path = Path(onnx_path)
    card = ModelCard(
        name=onnx_path.stem,
        architecture=architecture,
        onnx_sha256=sha256_file(onnx_path),
        training=training,
        normalisation=normalisation,
        input_spec=survey_input_spec(),
        metrics=dict(metrics or {}),
        threshold=threshold,
        reference=reference,
    )
    # Round-trip through the validator so a bad card fails at training time, not in the survey.
    return ModelCard.from_dict(json.loads(card.to_json()), where=f"new card for {onnx_path}")


def write_card(card: ModelCard, path: str | Path) -> Path:
    """Write ``card`` as JSON to ``path`` (normally ``card_path_for(onnx_path)``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(card.to_json(), encoding="utf-8")
    return path


def read_card(path: str | Path) -> ModelCard:
    """Parse and validate one card file (no check against an ONNX file)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as err:
        raise ModelCardError(f"model card {path} not found") from err
    return ModelCard.from_json(text, where=str(path))


def load_model_card(onnx_path: str | Path) -> ModelCard:
    """The validated card of ``NAME.onnx``, or ModelCardError saying what is wrong and the fix.

    Refuses when the model or its card is missing, the card does not follow the schema, the
    card describes another ONNX file (sha256 differs), or the card's input spec differs from
    ``survey_input_spec()``.
    """
    onnx_path = Path(onnx_path)
    card_path = card_path_for(onnx_path)
    if not onnx_path.is_file():
        raise ModelCardError(f"model file {onnx_path} not found")
    if not card_path.is_file():
        raise ModelCardError(
            f"model {onnx_path} has no card: expected {card_path} beside it. Export the model with "
            "`halo-train export`, which writes both files, or copy the card together with the model."
        )
    card = read_card(card_path)
    actual = sha256_file(onnx_path)
    if actual != card.onnx_sha256:
        raise ModelCardError(
            f"{card_path} describes another model: its onnx_sha256 {card.onnx_sha256[:12]}... differs from "
            f"the sha256 {actual[:12]}... of {onnx_path}. Copy the matching card, or re-export both files."
        )
    differences = card.input_spec.differences(survey_input_spec())
    if differences:
        raise ModelCardError(
            f"{card_path}: the model expects another input than this survey produces "
            f"({'; '.join(differences)}; card != survey). Retrain/re-export the model with this "
            "version of survey.sky.bands, or run the survey version that matches the card."
        )
    return card
