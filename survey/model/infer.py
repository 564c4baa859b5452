"""The ONNX Runtime shim: the only module of the survey that talks to onnxruntime.

``OnnxClassifier`` loads a model together with its card (``survey.model.modelcard``), checks the
two agree, picks an execution provider and turns a batch of normalised cut-outs into halo
probabilities. Swapping the inference engine means rewriting this file only.

Which provider runs is read back from the session after it is created, never assumed:
``onnxruntime-gpu`` lists ``CUDAExecutionProvider`` as available on machines without a GPU
(or without the CUDA libraries) and then silently falls back to the CPU.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from survey.exceptions import BadInputError, HaloSurveyError, ModelCardError
from survey.model.modelcard import HALO_CLASS, INPUT_NAME, OUTPUT_NAME, ModelCard, load_model_card
from survey.model.normalisation import Normalisation
from survey.model.reference import REFERENCE_RECIPE, ReferenceOutputs, make_reference

logger = logging.getLogger(__name__)

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"

ProviderChoice = Literal["auto", "cpu", "cuda"] | None

NORMALISATION_ID_KEY = "normalisation_id"
"""ONNX metadata key that training/export.py stamps; checked against the card when present."""


def requested_providers(choice: ProviderChoice, *, available: list[str] | None = None) -> list[str]:
    """Execution providers to ask onnxruntime for, in order of preference.

    ``None``/``"auto"`` asks for CUDA first when this onnxruntime build offers it, ``"cpu"``
    only the CPU, ``"cuda"`` CUDA with the CPU as fallback for ops CUDA lacks.

    >>> requested_providers("auto", available=["CPUExecutionProvider"])
    ['CPUExecutionProvider']
    >>> requested_providers(None, available=["CUDAExecutionProvider", "CPUExecutionProvider"])
    ['CUDAExecutionProvider', 'CPUExecutionProvider']
    """
    available = ort.get_available_providers() if available is None else available
    if choice in (None, "auto"):
        return [CUDA, CPU] if CUDA in available else [CPU]
    if choice == "cpu":
        return [CPU]
    if choice == "cuda":
        if CUDA not in available:
            raise HaloSurveyError(
                f"providers='cuda' asked for, but this onnxruntime offers only {available}. "
                "Install onnxruntime-gpu (the `gpu` extra) or use providers='auto' or 'cpu'."
            )
        return [CUDA, CPU]
    raise ValueError(f"providers must be None, 'auto', 'cpu' or 'cuda', got {choice!r}")


def _preload_cuda_libraries() -> None:
    """Load the CUDA and cuDNN libraries of the nvidia-* wheels (``onnxruntime-gpu[cuda,cudnn]``) before a CUDA session.

    Without it, a pip install outside the GPU image (which sets ``LD_LIBRARY_PATH`` instead)
    fails to load the CUDA provider on ``libcublasLt`` and ONNX Runtime silently falls back
    to the CPU. Missing libraries are left to the session, which reports what actually runs.
    """
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return
    try:
        preload(cuda=True, cudnn=True, msvc=False)
    except Exception as exc:  # best effort: the provider check after the session says what runs
        logger.debug("onnxruntime.preload_dlls failed: %s", exc)


def _session_options(intra_op_threads: int | None) -> ort.SessionOptions:
    options = ort.SessionOptions()
    if intra_op_threads is not None:
        if intra_op_threads < 1:
            raise ValueError(f"intra_op_threads must be >= 1, got {intra_op_threads}")
        # Ray runs several actors per node: each must not grab every core.
        options.intra_op_num_threads = intra_op_threads
    return options


def _create_session(path: Path, providers: list[str], intra_op_threads: int | None) -> ort.InferenceSession:
    """An ONNX Runtime session of the file at ``path``; its own errors become a HaloSurveyError naming the file."""
    options = _session_options(intra_op_threads)
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as err:  # onnxruntime raises its own untyped Fail/InvalidProtobuf errors
        raise HaloSurveyError(f"onnxruntime could not load {path}: {err}") from err


class OnnxClassifier:
    """A halo classifier loaded from ``NAME.onnx`` + ``NAME.card.json``.

    Parameters
    ----------
    model_path : str or Path
        The ONNX file; its card must lie beside it (see ``survey.model.modelcard``).
    providers : {None, "auto", "cpu", "cuda"}
        Execution provider choice. ``None``/``"auto"`` uses CUDA when it actually runs,
        else the CPU; ``"cuda"`` raises if the session does not end up on CUDA.
    intra_op_threads : int, optional
        Threads onnxruntime may use inside one op; ``None`` keeps onnxruntime's default.

    Attributes
    ----------
    card : ModelCard
        The validated model card.
    provider : str
        The execution provider that actually runs the model (e.g. ``"CPUExecutionProvider"``).

    Notes
    -----
    Everything is built in ``__init__`` from plain arguments and nothing is global, so the
    class can be handed to Ray (``map_batches(..., fn_constructor_kwargs=...)``) and each
    actor loads its own session. Pickling sends only the arguments; the session is rebuilt.
    """

    def __init__(
        self,
        model_path: str | Path,
        *,
        providers: ProviderChoice = None,
        intra_op_threads: int | None = None,
    ):
        self.model_path = Path(model_path)
        self._providers_choice = providers
        self._intra_op_threads = intra_op_threads
        self.card: ModelCard = load_model_card(self.model_path)
        self._requested = requested_providers(providers)
        if CUDA in self._requested:
            _preload_cuda_libraries()
        self._session = _create_session(self.model_path, self._requested, intra_op_threads)
        self.provider: str = self._session.get_providers()[0]
        self._check_provider()
        self._check_io()
        self._check_metadata()
        self._input_name = self.card.input_spec.input_name
        self._check_reference()
        logger.info("model %s (%s) runs on %s", self.model_path.name, self.card.architecture, self.provider)

    # -- validation -----------------------------------------------------------------

    def _check_provider(self) -> None:
        if self._requested[0] == CUDA and self.provider != CUDA:
            if self._providers_choice == "cuda":
                raise HaloSurveyError(
                    f"providers='cuda' asked for, but onnxruntime fell back to {self.provider} for "
                    f"{self.model_path} (no GPU visible, or CUDA/cuDNN libraries missing). "
                    "Fix the CUDA install or use providers='auto'."
                )
            logger.warning("CUDA was requested for %s but %s runs it", self.model_path.name, self.provider)

    def _check_io(self) -> None:
        """The ONNX graph's input and output must be the ones the card promises."""
        spec = self.card.input_spec
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        problems = []
        if [i.name for i in inputs] != [spec.input_name]:
            problems.append(f"inputs {[i.name for i in inputs]} != [{spec.input_name!r}]")
        elif list(inputs[0].shape[1:]) != list(spec.shape) or inputs[0].type != "tensor(float)":
            problems.append(f"input shape {inputs[0].shape} {inputs[0].type} != (N, {spec.shape}) float32")
        if spec.output_name not in [o.name for o in outputs]:
            problems.append(f"outputs {[o.name for o in outputs]} lack {spec.output_name!r}")
        if problems:
            raise ModelCardError(f"{self.model_path}: the ONNX graph disagrees with its card: {'; '.join(problems)}")

    def _check_metadata(self) -> None:
        """The normalisation id stamped at export (if any) must match the card's."""
        stamped = self._session.get_modelmeta().custom_metadata_map.get(NORMALISATION_ID_KEY)
        if stamped and stamped != self.card.normalisation.id:
            raise ModelCardError(
                f"{self.model_path}: exported with normalisation {stamped} but its card says "
                f"{self.card.normalisation.id}; re-export the model and card together."
            )

    def _check_reference(self) -> None:
        """The model must still give the reference inputs the probabilities its card recorded at export."""
        reference = self.card.reference
        if reference is None:
            logger.info("%s: its card has no reference outputs; the weights are not checked "
                        "(`halo-train add-reference` adds them)", self.model_path.name)
            return
        if reference.recipe != REFERENCE_RECIPE:
            logger.warning("%s: reference recipe %r is unknown to this survey (it builds %r); weights not checked",
                           self.model_path.name, reference.recipe, REFERENCE_RECIPE)
            return
        differences = reference.differences(self.predict, self.normalisation)
        worst = float(differences.max())
        if not worst <= reference.atol:  # NaN (a broken graph) fails too
            raise ModelCardError(
                f"{self.model_path}: on its {len(differences)} reference inputs the model now gives halo "
                f"probabilities up to {worst:.3g} away from those its card recorded at export (accepted: "
                f"{reference.atol:g}, on {self.provider}); its weights are not the ones the card was made for "
                "(a damaged or replaced file). Restore the file or re-export the model with its card."
            )

    # -- public API -----------------------------------------------------------------

    @property
    def normalisation(self) -> Normalisation:
        """The min-max normalisation the inputs of ``predict`` must already have."""
        return self.card.normalisation

    @property
    def threshold(self) -> float:
        """Halo-probability threshold for a candidate, from the card."""
        return self.card.threshold

    def predict(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Halo probability of each cut-out in a batch.

        Parameters
        ----------
        batch : numpy.ndarray
            (N, 4, 64, 64) float32 band planes (the card's ``input_spec``), clipped and
            normalised with ``self.normalisation``, as ``survey.model.preprocess.cut_windows``
            makes them. Any N, including 0.

        Returns
        -------
        numpy.ndarray
            (N,) float32: the softmax probability of class 1 (halo).
        """
        self._check_batch(batch)
        if batch.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        output = self.card.input_spec.output_name
        (probs,) = self._session.run([output], {self._input_name: np.ascontiguousarray(batch)})
        return np.asarray(probs[:, HALO_CLASS], dtype=np.float32)

    def _check_batch(self, batch: Any) -> None:
        expected = tuple(self.card.input_spec.shape)
        layout = self.card.input_spec.layout
        where = f"OnnxClassifier({self.model_path.name}).predict"
        if not isinstance(batch, np.ndarray):
            raise BadInputError(where, f"expected a numpy array, got {type(batch).__name__}")
        if batch.ndim != 4 or batch.shape[1:] != expected:
            shape = ", ".join(map(str, expected))
            raise BadInputError(where, f"expected shape (N, {shape}) ({layout}), got {batch.shape}")
        if batch.dtype != np.float32:
            raise BadInputError(
                where, f"expected float32 normalised cut-outs, got {batch.dtype}; cast with .astype(np.float32)"
            )

    # -- pickling for Ray: ship the arguments, rebuild the session ---------------------

    def __getstate__(self) -> dict[str, Any]:
        return {
            "model_path": self.model_path,
            "providers": self._providers_choice,
            "intra_op_threads": self._intra_op_threads,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["model_path"], providers=state["providers"], intra_op_threads=state["intra_op_threads"])

    def __repr__(self) -> str:
        return (
            f"OnnxClassifier({str(self.model_path)!r}, "
            f"architecture={self.card.architecture!r}, provider={self.provider!r})"
        )


def reference_of(model_path: str | Path, *, normalisation: Normalisation, intra_op_threads: int | None = 1) -> ReferenceOutputs:
    """The reference outputs of an ONNX file (``survey.model.reference``), computed on the CPU provider.

    Used when a card is made (``training.export``) or completed (``halo-train
    add-reference``); the file is taken as it is, so run it only on a model known to be good.

    Parameters
    ----------
    model_path : str or Path
        The ONNX file (input ``image`` (N, 4, 64, 64), output ``probs`` (N, 2)).
    normalisation : Normalisation
        The model's input scaling (its card's), which builds the reference inputs.
    intra_op_threads : int, optional
        ONNX Runtime threads.

    Returns
    -------
    ReferenceOutputs
        The chosen inputs and the model's halo probabilities on them.

    Raises
    ------
    HaloSurveyError
        ONNX Runtime cannot load the file.
    """
    session = _create_session(Path(model_path), [CPU], intra_op_threads)

    def predict(batch: np.ndarray) -> np.ndarray:
        (probs,) = session.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(batch, dtype=np.float32)})
        return np.asarray(probs[:, HALO_CLASS], np.float64)

    return make_reference(predict, normalisation)
