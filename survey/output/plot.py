"""``halo-survey plot PATH``: a Mollweide sky map of the candidates and a gallery of the best ones.

Reads a finished candidate catalogue (``survey.output.query.read_candidates``) and writes PNGs
with matplotlib's Agg backend (no display needed, safe in containers and Ray workers):

* ``sky.png`` - every candidate on a Mollweide projection of the sky, coloured by score,
  RA increasing to the left as on the sky;
* ``gallery.png`` - the highest-scoring candidates, one row each, the four GLEAM bands of
  the stored cut-out side by side (each at its native pixel scale, so the panels cover
  59.7', 46.9', 36.3' and 29.9').
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from survey.defaults import DEFAULT_TOP  # noqa: E402
from survey.exceptions import BadInputError, NoDetectionsWarning  # noqa: E402
from survey.output import paths  # noqa: E402
from survey.output.query import read_candidates, read_schema  # noqa: E402
from survey.output.schema import CUTOUT_COLUMN  # noqa: E402
from survey.sky.bands import BANDS, CUTOUT_SIZE  # noqa: E402

SKY_FILENAME = "sky.png"
GALLERY_FILENAME = "gallery.png"


def mollweide_xy(ra_deg: np.ndarray, dec_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Matplotlib Mollweide coordinates (radians) with RA increasing to the left, RA 180 in the middle.

    >>> x, y = mollweide_xy(np.array([0.0, 90.0, 270.0]), np.array([0.0, 0.0, -30.0]))
    >>> np.round(np.degrees(x), 1).tolist(), np.round(np.degrees(y), 1).tolist()
    ([180.0, 90.0, -90.0], [0.0, 0.0, -30.0])
    """
    x = np.radians(180.0 - np.asarray(ra_deg, float))
    return np.where(x > np.pi, x - 2 * np.pi, x), np.radians(np.asarray(dec_deg, float))


def _label_ra_axis(ax) -> None:
    ticks = np.arange(-150, 181, 30)
    ax.set_xticks(np.radians(ticks))
    ax.set_xticklabels([f"{(180 - t) % 360:.0f}°" for t in ticks], fontsize=7)
    ax.grid(True, alpha=0.3)


def sky_map(frame: pd.DataFrame, out: Path, *, title: str) -> Path:
    """Mollweide map of the candidates in ``frame`` (``ra``, ``dec``, ``score``), written to ``out``.

    Parameters
    ----------
    frame : pandas.DataFrame
        Candidates with ``ra``, ``dec`` (ICRS degrees) and ``score`` (halo probability,
        the colour, 0 to 1); an empty frame gives a map saying "no candidates".
    out : Path
        PNG file to write (overwritten).
    title : str
        Plot title; the number of candidates is appended.

    Returns
    -------
    Path
        ``out``.
    """
    fig = plt.figure(figsize=(10, 5.5))
    ax = fig.add_subplot(111, projection="mollweide")
    if len(frame):
        x, y = mollweide_xy(frame["ra"].to_numpy(float), frame["dec"].to_numpy(float))
        points = ax.scatter(x, y, c=frame["score"].to_numpy(float), s=12, cmap="viridis", vmin=0, vmax=1)
        fig.colorbar(points, ax=ax, orientation="horizontal", fraction=0.05, pad=0.08, label="halo probability")
    else:
        ax.text(0, 0, "no candidates", ha="center", va="center")
    _label_ra_axis(ax)
    ax.set_title(f"{title} ({len(frame)} candidates)")
    fig.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return out


def _label(row: pd.Series) -> str:
    name = row.get("target_name")
    if not isinstance(name, str) or not name:
        name = next((row[c] for c in row.index if c.endswith("_name") and isinstance(row[c], str) and row[c]), "")
    position = f"RA {row['ra']:.3f} Dec {row['dec']:+.3f}"
    return f"{name + '  ' if name else ''}{position}\nscore {row['score']:.3f}  {row.get('flags', '')}"


def gallery(frame: pd.DataFrame, out: Path, *, top: int = DEFAULT_TOP) -> Path | None:
    """The ``top`` best candidates' four-band cut-outs, one row each; None when nothing to show.

    Parameters
    ----------
    frame : pandas.DataFrame
        Candidates with ``score``, ``ra``, ``dec`` and ``cutout`` (the stored 64x64x4
        stack, flattened); ``target_name``, ``*_name`` and ``flags`` label the rows when
        present.
    out : Path
        PNG file to write (overwritten).
    top : int
        Most rows to show, highest score first.

    Returns
    -------
    Path or None
        ``out``, or None (nothing written) when ``frame`` is empty.
    """
    best = frame.sort_values("score", ascending=False).head(top)
    if best.empty:
        return None
    fig, axes = plt.subplots(len(best), len(BANDS), figsize=(2.2 * len(BANDS), 2.4 * len(best)), squeeze=False)
    for row_axes, (_, row) in zip(axes, best.iterrows()):
        stack = np.asarray(row[CUTOUT_COLUMN], np.float32).reshape(CUTOUT_SIZE, CUTOUT_SIZE, len(BANDS))
        for channel, (ax, band) in enumerate(zip(row_axes, BANDS)):
            ax.imshow(stack[..., channel], origin="lower", cmap="inferno")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{band.name} MHz", fontsize=8)
        row_axes[0].set_ylabel(_label(row), fontsize=7, rotation=0, ha="right", va="center")
    fig.tight_layout()
    fig.savefig(out, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return out


def default_out_dir(path: paths.PathLike) -> Path:
    """``PATH/plots`` for a local run directory or catalogue, ``./halo-survey-plots`` for a URI."""
    plots = paths.plots_dir(path)
    return Path(plots.path) if plots.protocol in ("", "file", "local") else Path("halo-survey-plots")


def plot_command(path: paths.PathLike, *, out_dir: str | Path | None = None, top: int = DEFAULT_TOP) -> list[Path]:
    """What ``halo-survey plot PATH [--out DIR] [--top N]`` does; returns the files written.

    Parameters
    ----------
    path : str, Path or UPath
        A run directory (its ``candidates/`` is read) or a candidate catalogue root.
    out_dir : path-like, optional
        Folder for the PNGs, created if needed; default ``default_out_dir(path)``
        (``PATH/plots``, or ``./halo-survey-plots`` for a remote URI).
    top : int
        Rows of the gallery, at least 1.

    Returns
    -------
    list of Path
        ``sky.png`` and, when the catalogue stores cut-outs and has candidates,
        ``gallery.png``. Without a ``cutout`` column a ``NoDetectionsWarning`` says the
        gallery was skipped.

    Raises
    ------
    CatalogError
        ``PATH`` holds no finished catalogue.
    BadInputError
        ``top`` is not positive.
    """
    if top < 1:
        raise BadInputError("--top", f"must be at least 1, got {top}")
    root = paths.candidates_root(path)
    schema = read_schema(root)
    columns = ["ra", "dec", "score", "flags", "target_name", *[n for n in schema.names if n.endswith("_name")]]
    has_cutouts = CUTOUT_COLUMN in schema.names
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoDetectionsWarning)  # an empty map is still a map
        frame = read_candidates(root, columns=list(dict.fromkeys(columns + ([CUTOUT_COLUMN] if has_cutouts else []))))
    out = Path(out_dir) if out_dir is not None else default_out_dir(path)
    out.mkdir(parents=True, exist_ok=True)
    written = [sky_map(frame, out / SKY_FILENAME, title=str(path))]
    if has_cutouts:
        made = gallery(frame, out / GALLERY_FILENAME, top=top)
        written += [made] if made is not None else []
    else:
        warnings.warn(f"{root}: no cutout column (run written with store_cutouts off): no gallery", NoDetectionsWarning,
                      stacklevel=2)
    return written
