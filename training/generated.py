"""Generated halos as classifier training data: which set a fold may use, and how they join class 1.

The paper's claim is that halo images drawn from a diffusion model, added to class 1,
improve the classifier. Two rules keep a test of that claim honest:

1. **A generator never saw what a fold tests on.** Every ``halo-train generate`` output
   records the sources its model trained on (``meta["model"]["data"]["sources"]``). For
   each fold, ``choose_for_fold`` takes the first set whose generator trained on none of
   the fold's test sources, and refuses, naming the fold and its test sources, when none
   qualifies: a generator trained on all 23 halos would copy the test halos into training.
2. **Generated images are data, not a new loss.** They join the fold's training samples as
   label 1, kind ``"generated"``, in clipped Jy/beam like a real cut-out (``generate.py``
   re-clips them), and go through the same on-the-fly augmentation and the same
   normalisation (fitted on the real training samples only, so the input scaling is the
   same with and without them). Class 1's weight is split between real and generated
   cut-outs at ``ratio`` (default the paper's 5,800 generated beside 5,440 augmented real
   halo images), and batches are drawn in proportion to the weights
   (``TrainConfig.kind_shares``): with hundreds of generated images beside a dozen real
   halos, uniform draws would almost never show a real halo.

A generated cut-out has no field, so no noise of its own; it is given its generator's
clip levels / 3 (the survey clips at 3 sigma), which only matters to noise-unit scalings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from survey.sky.bands import BAND_NAMES
from training.data import SampleSet
from training.generate import read_samples

PAPER_RATIO = 5800 / 5440
"""Generated : real halo images in the paper's augmented training set (section 4.2)."""

CLIP_SIGMAS = 3.0
"""The survey's clip level in noise sigmas: a generated image's noise is its clip level over this."""


@dataclass(frozen=True, eq=False)
class GeneratedSet:
    """The images of one ``halo-train generate`` directory, with what their generator trained on.

    Attributes
    ----------
    directory : Path
        Where they were read from.
    kind : str
        ``"ddpm"`` or ``"wgan"``.
    images : numpy.ndarray
        (N, 64, 64, 4) float32 clipped Jy/beam, bands in ``BAND_NAMES`` order.
    trained_on : frozenset of str
        Names of the sources the generator was trained on.
    noise : numpy.ndarray
        (4,) the noise sigma each image is given (clip level / 3), Jy/beam.
    """

    directory: Path
    kind: str
    images: np.ndarray
    trained_on: frozenset[str]
    noise: np.ndarray

    def draw(self, n: int | None = None, *, seed: int = 0) -> np.ndarray:
        """``n`` of the images drawn without replacement, in file order (all of them when None or more than there are).

        Parameters
        ----------
        n : int, optional
            How many.
        seed : int
            Seeds the draw.

        Returns
        -------
        numpy.ndarray
            (n, 64, 64, 4) float32.
        """
        if n is None or n >= len(self.images):
            return self.images.astype(np.float32)
        chosen = np.sort(np.random.default_rng(seed).choice(len(self.images), n, replace=False))
        return self.images[chosen].astype(np.float32)

    def describe(self) -> dict:
        """JSON-ready record for a results file: where, what, how many, trained on what."""
        return {"directory": str(self.directory), "kind": self.kind, "n": int(len(self.images)),
                "trained_on": sorted(self.trained_on)}


def read_generated(directory: str | Path) -> GeneratedSet:
    """Read a ``halo-train generate`` output directory.

    Parameters
    ----------
    directory : path-like
        Holds ``samples.npz``.

    Returns
    -------
    GeneratedSet

    Raises
    ------
    FileNotFoundError
        No ``samples.npz`` there.
    ValueError
        The samples record neither their generator's training sources nor its clip levels.
    """
    images, meta = read_samples(directory)
    data = meta.get("model", {}).get("data", {})
    if "sources" not in data or "clip_levels_jy" not in data:
        raise ValueError(f"{directory}: the samples do not record which sources their generator trained on; "
                         "regenerate them with `halo-train generate`")
    levels = np.array([data["clip_levels_jy"][band] for band in BAND_NAMES], np.float32)
    return GeneratedSet(Path(directory), str(meta["model"].get("kind", "unknown")), images,
                        frozenset(data["sources"]), levels / CLIP_SIGMAS)


def choose_for_fold(sets: Sequence[GeneratedSet], held_out: Sequence[str], *, fold: str) -> GeneratedSet:
    """The first set whose generator trained on none of ``held_out``.

    Parameters
    ----------
    sets : sequence of GeneratedSet
        Candidates, in the order given on the command line.
    held_out : sequence of str
        The fold's test sources.
    fold : str
        How to name the fold in an error (``"paper test split"``, ``"repeat 0 fold 3"``).

    Returns
    -------
    GeneratedSet

    Raises
    ------
    ValueError
        Every set's generator trained on some of ``held_out``; the message names them and
        the exclusion that would make a fitting generator.
    """
    held = set(held_out)
    for candidate in sets:
        if not candidate.trained_on & held:
            return candidate
    seen = "; ".join(f"{s.directory} trained on {', '.join(sorted(s.trained_on & held))}" for s in sets)
    raise ValueError(f"{fold}: no generated set comes from a generator that never saw the fold's test sources "
                     f"({seen}). Train one with `halo-train ddpm --split all --exclude \"{','.join(sorted(held))}\"` "
                     "(`halo-train folds` lists each fold's test sources)")


PAPER_STYLE_SHARES = (("0:centre", 0.5), ("0:side", 0.5), ("1:centre", 1.0))
"""The paper protocols' class-0 split (non-halo centres and halo side cut-outs half each) as shares."""


def generated_shares(ratio: float, base: tuple[tuple[str, float], ...] = PAPER_STYLE_SHARES
                     ) -> tuple[tuple[str, float], ...]:
    """``base`` weight shares plus generated halos at ``ratio`` times the real halo centres' share.

    Generated halos imitate the real halos' central cut-outs, so they are weighed against
    those: with the paper's ratio, the classifier protocols' class 1 is 48 % real and 52 %
    generated; in the blind recipe (``training.blind.DEFAULT_SHARES``) injected halos keep
    their weight and the centres' part of class 1 is shared the same way.

    Parameters
    ----------
    ratio : float
        Weight of generated over real halo centres, at least 0 (0: the real halos alone,
        with the same weighted draws, the control arm of a comparison).
    base : tuple of (str, float)
        ``TrainConfig.kind_shares`` without generated halos; must have ``"1:centre"``.

    Returns
    -------
    tuple of (str, float)
    """
    if ratio < 0:
        raise ValueError(f"the generated : real ratio must be >= 0, got {ratio}")
    shares = dict(base)
    if "1:centre" not in shares:
        raise ValueError("generated halos are weighed against the real halo centres, which these shares lack")
    return tuple(base) + (("1:generated", ratio * shares["1:centre"]),)


def with_generated(train: SampleSet, generated: GeneratedSet, *, n: int | None = None, seed: int = 0) -> SampleSet:
    """``train`` with ``n`` images of ``generated`` (all of them by default) added as label 1, kind ``"generated"``.

    Parameters
    ----------
    train : SampleSet
        A fold's real training samples.
    generated : GeneratedSet
        A set ``choose_for_fold`` allowed for this fold.
    n : int, optional
        How many to add, drawn without replacement (all when None or more than there are).
    seed : int
        Seeds the draw.

    Returns
    -------
    SampleSet
    """
    images = generated.draw(n, seed=seed)
    count = len(images)
    noise = None if train.noise is None else np.concatenate([train.noise, np.tile(generated.noise, (count, 1))])
    return SampleSet(np.concatenate([train.x, images]), np.concatenate([train.y, np.ones(count, train.y.dtype)]),
                     np.concatenate([train.source, np.full(count, f"{generated.kind}:{generated.directory.name}")]),
                     np.concatenate([train.kind, np.full(count, "generated")]), noise)


__all__ = ["PAPER_RATIO", "PAPER_STYLE_SHARES", "GeneratedSet", "read_generated", "choose_for_fold", "generated_shares", "with_generated"]
