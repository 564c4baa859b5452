"""Generated halo cut-outs from a trained DDPM or WGAN, in the units of real ones, and the files that hold them.

``generate_halos(model_dir, n)`` is what the classifier protocols call: it returns
(n, 64, 64, 4) float32 cut-outs in clipped Jy/beam, bands in ``survey.sky.bands.BANDS``
order, the same form as ``training.data.SourceCutouts.centre``, so they join class 1 and
go through the same augmentation and normalisation as real halos. Three steps, all in the
model directory's record:

1. draw in the model's [-1, 1] scale (DDPM: EMA weights, DDIM or ancestral; WGAN: the
   generator), with labels drawn in the training set's proportions for a conditional model;
2. invert the stored ``log-minmax-sym`` normalisation back to Jy/beam;
3. re-clip each band at its training clip level (``training.halos.reclip``): real cut-outs
   are exactly zero below the 3-sigma clip, and samples that were not would be told
   apart by their faint noise floor alone.

``write_samples`` writes ``samples.npz`` (images in Jy/beam and on [-1, 1], labels, the
normalisation and the model's record), optionally ``samples.fits`` (one image HDU per
band, cubes of n planes; generated images have no sky position, so no WCS), and
``grid.png`` (rows of re-clipped samples on the [-1, 1] scale, one column per band).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from survey.model.modelcard import code_version
from survey.model.normalisation import Normalisation
from survey.sky.bands import BAND_NAMES
from training.checkpoints import read_model_json
from training.halos import reclip, sample_labels

SAMPLES_NPZ = "samples.npz"
SAMPLES_FITS = "samples.fits"
GRID_PNG = "grid.png"
SAMPLERS = ("ddim", "ancestral")


@dataclass
class HaloGenerator:
    """A trained generative model loaded once, drawing cut-outs on demand.

    Attributes
    ----------
    model : keras.Model
        ``DiffusionModel`` or ``WGAN``.
    record : dict
        The model directory's ``model.json`` with the checkpoint ``state``.
    model_dir : Path
        Where it came from.
    """

    model: object
    record: dict
    model_dir: Path

    @classmethod
    def from_dir(cls, model_dir: str | Path) -> "HaloGenerator":
        """Load the DDPM or WGAN in ``model_dir`` (kind read from its ``model.json``)."""
        kind = read_model_json(model_dir).get("kind")
        if kind == "ddpm":
            from training.diffusion import load_ddpm

            model, record = load_ddpm(model_dir)
        elif kind == "wgan":
            from training.wgan import load_wgan

            model, record = load_wgan(model_dir)
        else:
            raise ValueError(f"{model_dir}: unknown model kind {kind!r} (expected ddpm or wgan)")
        return cls(model, record, Path(model_dir))

    @property
    def kind(self) -> str:
        """``ddpm`` or ``wgan``."""
        return self.record["kind"]

    @property
    def normalisation(self) -> Normalisation:
        """The scaling the model was trained in."""
        return Normalisation.from_dict(self.record["data"]["normalisation"])

    @property
    def clip_levels(self) -> np.ndarray:
        """(4,) per-band clip levels, Jy/beam, in band order."""
        levels = self.record["data"]["clip_levels_jy"]
        return np.array([levels[b] for b in BAND_NAMES], np.float32)

    @property
    def conditional(self) -> bool:
        """Whether the model takes labels."""
        return self.record["data"]["condition"] != "none"

    def labels_for(self, n: int, *, label: str | None = None, seed: int | None = None) -> np.ndarray:
        """``n`` labels: all ``label`` (a name of the vocabulary), or drawn in the training proportions.

        Parameters
        ----------
        n : int
            Labels to make.
        label : str, optional
            A halo type or source name of the model's vocabulary.
        seed : int, optional
            Seeds the draw.

        Returns
        -------
        numpy.ndarray
            (n,) int32 labels (all 0 for an unconditional model).
        """
        vocabulary = self.record["data"]["vocabulary"]
        if label is not None:
            if label not in vocabulary:
                raise ValueError(f"label {label!r} is not one of the model's: {', '.join(vocabulary)}")
            return np.full(n, vocabulary.index(label), np.int32)
        return sample_labels(self.record["data"], n, seed=seed)

    def sample_normalised(self, n: int, *, sampler: str = "ddim", steps: int = 50, eta: float = 0.0,
                          seed: int | None = 0, labels: np.ndarray | None = None,
                          batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` images on the model's [-1, 1] scale, with the labels used.

        Parameters
        ----------
        n : int
            Images to draw.
        sampler : {"ddim", "ancestral"}
            DDPM only: DDIM over ``steps`` or the full ancestral chain.
        steps : int
            DDIM steps.
        eta : float
            DDIM noise scale.
        seed : int, optional
            Seeds labels and draws.
        labels : numpy.ndarray, optional
            (n,) labels; default: drawn in the training set's proportions.
        batch_size : int
            Images per batch.

        Returns
        -------
        (numpy.ndarray, numpy.ndarray)
            (n, 64, 64, 4) float32 in [-1, 1] and (n,) int32 labels.
        """
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
        labels = self.labels_for(n, seed=seed) if labels is None else np.asarray(labels, np.int32)
        if len(labels) != n:
            raise ValueError(f"got {len(labels)} labels for {n} images")
        if self.kind == "ddpm":
            x = self.model.sample(n, sampler=sampler, steps=steps, eta=eta, seed=seed,
                                  labels=labels if self.model.conditional else None, batch_size=batch_size)
        else:
            x = self.model.sample(n, labels=labels, seed=seed, batch_size=batch_size)
        return np.clip(x, -1.0, 1.0).astype(np.float32), labels

    def to_jy(self, x: np.ndarray, *, clip: bool = True) -> np.ndarray:
        """[-1, 1] images -> Jy/beam (inverted normalisation), re-clipped at the training clip levels unless ``clip=False``."""
        jy = self.normalisation.invert(x)
        return reclip(jy, self.clip_levels) if clip else jy

    def generate(self, n: int, *, sampler: str = "ddim", steps: int = 50, eta: float = 0.0, seed: int | None = 0,
                 label: str | None = None, clip: bool = True, batch_size: int = 64) -> np.ndarray:
        """``n`` generated halo cut-outs in clipped Jy/beam (what ``generate_halos`` returns).

        Parameters
        ----------
        n : int
            Cut-outs to generate.
        sampler, steps, eta : str, int, float
            DDPM sampling (see ``generate_halos``).
        seed : int, optional
            Seeds labels and draws.
        label : str, optional
            Only this label (conditional models).
        clip : bool
            Re-clip at the training clip levels.
        batch_size : int
            Images per sampling batch.

        Returns
        -------
        numpy.ndarray
            (n, 64, 64, 4) float32, Jy/beam.
        """
        labels = self.labels_for(n, label=label, seed=seed)
        x, _ = self.sample_normalised(n, sampler=sampler, steps=steps, eta=eta, seed=seed, labels=labels,
                                      batch_size=batch_size)
        return self.to_jy(x, clip=clip)


def generate_halos(model_dir: str | Path, n: int, *, sampler: str = "ddim", steps: int = 50, eta: float = 0.0,
                   seed: int | None = 0, label: str | None = None, clip: bool = True,
                   batch_size: int = 64) -> np.ndarray:
    """N generated halo cut-outs from a trained model directory, in clipped Jy/beam like real ones.

    Parameters
    ----------
    model_dir : path-like
        A directory written by ``halo-train ddpm`` or ``halo-train wgan``.
    n : int
        Cut-outs to generate.
    sampler : {"ddim", "ancestral"}
        DDPM: DDIM with ``steps`` steps (default, fast) or the 1000-step ancestral chain.
        Ignored for a WGAN.
    steps : int
        DDIM steps.
    eta : float
        DDIM noise scale (0: deterministic given the initial noise).
    seed : int, optional
        Seeds labels and draws (the same seed, the same cut-outs).
    label : str, optional
        Conditional models: generate only this label (a halo type or source name of the
        model's vocabulary); default: labels in the training set's proportions.
    clip : bool
        Re-clip at the training clip levels (default); False returns the raw inversion.
    batch_size : int
        Images per sampling batch.

    Returns
    -------
    numpy.ndarray
        (n, 64, 64, 4) float32, Jy/beam, bands in ``BANDS`` order.
    """
    return HaloGenerator.from_dir(model_dir).generate(n, sampler=sampler, steps=steps, eta=eta, seed=seed,
                                                      label=label, clip=clip, batch_size=batch_size)


def write_samples(out: str | Path, generator: HaloGenerator, x: np.ndarray, labels: np.ndarray, *, settings: dict,
                  fits: bool = False, grid_rows: int = 8) -> dict[str, Path]:
    """Write generated samples: ``samples.npz``, optionally ``samples.fits``, and ``grid.png``.

    Parameters
    ----------
    out : path-like
        Output directory (created).
    generator : HaloGenerator
        The model that drew them (its record and normalisation are stored).
    x : numpy.ndarray
        (n, 64, 64, 4) samples on the [-1, 1] scale.
    labels : numpy.ndarray
        (n,) their labels.
    settings : dict
        How they were drawn (sampler, steps, seed, ...), stored.
    fits : bool
        Also write ``samples.fits``.
    grid_rows : int
        Samples shown in ``grid.png``.

    Returns
    -------
    dict
        ``npz``, ``png`` (and ``fits``) -> path.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    jy = generator.to_jy(x)
    record = {**generator.record, "model_dir": str(generator.model_dir.resolve())}
    meta = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "halo_survey_version": code_version(),
            "settings": settings, "model": record, "bands": list(BAND_NAMES)}
    paths = {"npz": out / SAMPLES_NPZ, "png": out / GRID_PNG}
    vocabulary = np.array(generator.record["data"]["vocabulary"])
    np.savez_compressed(paths["npz"], images=jy, images_normalised=x, labels=labels, label_names=vocabulary[labels],
                        bands=np.array(BAND_NAMES), normalisation=json.dumps(generator.normalisation.to_dict()),
                        meta=json.dumps(meta, default=float))
    if fits:
        paths["fits"] = _write_fits(out / SAMPLES_FITS, jy, labels, vocabulary, meta)
    # Shown as delivered: re-clipped Jy/beam on the generative scale (the raw samples' faint
    # floor, which the re-clip removes, would otherwise fill every panel).
    plot_grid(generator.normalisation.apply(jy[:grid_rows]), paths["png"], labels=vocabulary[labels[:grid_rows]],
              title=f"{generator.kind} {generator.model_dir.name} ({settings.get('sampler', '')})")
    return paths


def _write_fits(path: Path, jy: np.ndarray, labels: np.ndarray, vocabulary: np.ndarray, meta: dict) -> Path:
    # Generated cut-outs have no sky position, hence no WCS; survey.images.base (the door to
    # band images with a celestial WCS) has nothing to say about them.
    from astropy.io import fits

    primary = fits.PrimaryHDU()
    primary.header["ORIGIN"] = "halo-survey generated halos"
    primary.header["GENKIND"] = meta["model"]["kind"]
    primary.header["NSAMPLES"] = len(jy)
    primary.header["HSVERS"] = meta["halo_survey_version"]
    hdus = [primary]
    for b, band in enumerate(BAND_NAMES):
        hdu = fits.ImageHDU(np.ascontiguousarray(jy[..., b]), name=f"BAND_{band}")
        hdu.header["BUNIT"] = "Jy/beam"
        hdu.header["BAND"] = band
        hdus.append(hdu)
    hdus.append(fits.BinTableHDU.from_columns([fits.Column("label", "J", array=labels),
                                               fits.Column("label_name", "32A", array=vocabulary[labels])],
                                              name="LABELS"))
    fits.HDUList(hdus).writeto(path, overwrite=True)
    return path


def plot_grid(x: np.ndarray, path: str | Path, *, labels=None, title: str = "") -> Path:
    """PNG grid of cut-outs on the [-1, 1] scale: one row per sample, one column per band.

    Parameters
    ----------
    x : numpy.ndarray
        (n, H, W, 4) images in [-1, 1].
    path : path-like
        PNG to write.
    labels : sequence of str, optional
        Row labels.
    title : str
        Figure title.

    Returns
    -------
    Path
        ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(x)
    fig, axes = plt.subplots(n, x.shape[-1], figsize=(1.6 * x.shape[-1], 1.6 * n + 0.4), squeeze=False)
    for i in range(n):
        for b in range(x.shape[-1]):
            ax = axes[i, b]
            ax.imshow(x[i, ..., b], origin="lower", cmap="inferno", vmin=-1, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            if i == 0:
                ax.set_title(f"{BAND_NAMES[b]} MHz", fontsize=8)
            if b == 0 and labels is not None:
                ax.set_ylabel(str(labels[i]), fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return Path(path)


def read_samples(directory: str | Path) -> tuple[np.ndarray, dict]:
    """The clipped Jy/beam images of a ``halo-train generate`` output directory and its metadata.

    Parameters
    ----------
    directory : path-like
        Holds ``samples.npz``.

    Returns
    -------
    (numpy.ndarray, dict)
        (n, 64, 64, 4) float32 images and the stored ``meta`` (settings, model record).
    """
    path = Path(directory) / SAMPLES_NPZ
    if not path.exists():
        raise FileNotFoundError(f"{directory} has no {SAMPLES_NPZ}; write one with `halo-train generate`")
    with np.load(path) as data:
        return data["images"].astype(np.float32), json.loads(str(data["meta"]))


def read_labels(directory: str | Path) -> np.ndarray:
    """The label each sample of a ``halo-train generate`` output was drawn with (0 for an unconditional model).

    Parameters
    ----------
    directory : path-like
        Holds ``samples.npz``.

    Returns
    -------
    numpy.ndarray
        (n,) int labels, indices into the generator's vocabulary.
    """
    with np.load(Path(directory) / SAMPLES_NPZ) as data:
        return data["labels"].astype(np.int64)


__all__ = ["HaloGenerator", "generate_halos", "write_samples", "plot_grid", "read_samples", "read_labels", "SAMPLERS"]
