"""Compiled kernels of the input builder: the noise fit, the clip and the cut in one pass each.

The model input of a survey window costs a noise fit and a clip of its tile's field and a
64x64 cut per band. In numpy each step is several passes over the pixels, most of them
making temporary arrays (``np.median`` copies and partitions, ``np.histogram`` works in
blocks of masks and fancy indices, a cut-out is gathered into a fresh array and copied
again into the batch). Here each step is one loop that numba compiles, writing into arrays
the caller keeps:

- ``nonzero_finite``: the finite, non-zero pixels and the finite and zero counts;
- ``absolute_deviations``: |x - median| for the MAD, one pass where numpy makes two;
- ``histogram``: ``np.histogram``'s uniform-bin rule (a bin estimate, then its corrections
  against the edges, which decide), so every count is the same;
- ``clip_and_mask``: the 3-sigma clip and the no-data mask of a raw image in one pass; the
  threshold is compared in float32, as numpy compares a float32 array with a Python float;
- ``split_zeros`` and ``scatter_finite``: a clipped field normalised through its non-zero
  pixels alone, zeros filled and survivors collected in one pass, written back in another;
- ``gather``: cut-outs straight into the caller's batch of band planes, with their peaks.

Every kernel equals the numpy code it replaces value for value (``tests/survey/model/
test_kernels.py`` checks them against it, the oracle, on real fields and on random images
with NaN, inf and zero blocks). numba comes with ``hats``; where it cannot be imported
(``AVAILABLE`` False) or ``HALO_SURVEY_NUMBA=0`` is set, the callers run the numpy code.
Compilation happens on first use (about 1.3 s for all of them here) and is cached on disk,
so Ray actors started later on the same machine load it instead.
"""

from __future__ import annotations

import os

import numpy as np

try:  # numba is a dependency of hats, so normally present
    import numba
except ImportError:  # pragma: no cover - exercised only where numba is missing
    numba = None

AVAILABLE = numba is not None
"""Whether the compiled kernels can run here."""


def enabled() -> bool:
    """Whether the input builder uses the kernels: numba is there and ``HALO_SURVEY_NUMBA`` is not ``0``."""
    return AVAILABLE and os.environ.get("HALO_SURVEY_NUMBA", "1") != "0"


def _jit(function):
    """numba's ``njit`` without fastmath (results must equal numpy's bit for bit); the function itself without numba.

    Compiled code is cached on disk (beside the module, else in the user's cache
    directory), so only the first process on a machine compiles; where no cache location
    is writable (a read-only install without a home), each process compiles for itself.
    """
    if not AVAILABLE:
        return function
    try:
        return numba.njit(cache=True, fastmath=False, nogil=True)(function)
    except RuntimeError:  # numba found nowhere to write its cache
        return numba.njit(cache=False, fastmath=False, nogil=True)(function)


@_jit
def nonzero_finite(pixels, out):  # pragma: no cover - compiled
    """Copy the finite, non-zero pixels of a 1-D array into ``out``; returns (n copied, finite, zeros).

    ``out`` is float64, or float32 for float32 pixels (half the bytes for the noise fit's
    passes, which widen each value exactly).
    """
    n = 0
    finite = 0
    zeros = 0
    for i in range(pixels.size):
        value = pixels[i]
        if np.isfinite(value):
            finite += 1
            if value == 0:
                zeros += 1
            else:
                out[n] = value
                n += 1
    return n, finite, zeros


@_jit
def split_zeros(pixels, fill, out, indices, values):  # pragma: no cover - compiled
    """Write ``fill`` over all of ``out`` and collect the non-zero pixels with their indices, in one pass.

    The first half of normalising a clipped field (``preprocess.normalise_field``): its
    zeros all map to one value, and only the few survivors need the scaling.

    Parameters
    ----------
    pixels : numpy.ndarray
        1-D float32 clipped field.
    fill : numpy.float32
        What a zero becomes (the normalisation's ``zero_level``).
    out : numpy.ndarray
        1-D float32 of the same length, written with ``fill``.
    indices : numpy.ndarray
        1-D int64 of the same length: the first n hold the non-zero pixels' indices.
    values : numpy.ndarray
        1-D float32 of the same length: the first n hold their values.

    Returns
    -------
    int
        n, the number of non-zero pixels.
    """
    n = 0
    for i in range(pixels.size):
        value = pixels[i]
        out[i] = fill
        if value != 0:
            indices[n] = i
            values[n] = value
            n += 1
    return n


@_jit
def scatter_finite(out, indices, values, fill) -> None:  # pragma: no cover - compiled
    """``out[indices] = values``, a non-finite value written as ``fill`` (what ``cutouts.finite_image`` makes of it).

    Parameters
    ----------
    out : numpy.ndarray
        1-D float32, written at ``indices``.
    indices : numpy.ndarray
        1-D int64 positions.
    values : numpy.ndarray
        1-D float32, as many as ``indices``.
    fill : numpy.float32
        Written where a value is NaN or infinite.
    """
    for k in range(indices.size):
        value = values[k]
        out[indices[k]] = value if np.isfinite(value) else fill


@_jit
def absolute_deviations(values, centre, out) -> None:  # pragma: no cover - compiled
    """``out = abs(values - centre)`` in float64, in one pass (numpy's subtract, then abs, make two).

    Parameters
    ----------
    values : numpy.ndarray
        1-D float64, or float32 (each widened exactly before the subtraction).
    centre : float
        Subtracted from each value.
    out : numpy.ndarray
        1-D float64 of the same length, written.
    """
    for i in range(values.size):
        out[i] = abs(values[i] - centre)


@_jit
def histogram(values, edges, counts) -> None:  # pragma: no cover - compiled
    """Add ``np.histogram(values, bins=edges)`` of uniform float64 ``edges`` to ``counts``: numpy's counts exactly.

    numpy's rule for equal bins: keep values in [first, last]; estimate the bin from the
    value's offset; put the last edge in the last bin; then one step down if the value is
    below its bin's lower edge and one up if it reaches the next edge (not past the last
    bin). Those two comparisons with the edges settle every value in the bin whose edges
    hold it, so an estimate within one bin of numpy's gives numpy's bin: here the offset is
    multiplied by bins / span where numpy divides by span (a division per pixel was most
    of this kernel's time).

    Parameters
    ----------
    values : numpy.ndarray
        1-D float64 values to bin (or float32, each widened exactly, as numpy would).
    edges : numpy.ndarray
        The bin edges numpy makes for the range (``np.histogram_bin_edges``), equally spaced.
    counts : numpy.ndarray
        (bins,) integer counts, added to in place.
    """
    bins = edges.size - 1
    first = edges[0]
    last = edges[bins]
    scale = bins / (last - first)
    for i in range(values.size):
        value = values[i]
        if value >= first and value <= last:
            index = min(int((value - first) * scale), bins)
            if index == bins:
                index -= 1
            if value < edges[index]:
                index -= 1
            if value >= edges[index + 1] and index != bins - 1:
                index += 1
            counts[index] += 1


@_jit
def clip(pixels, threshold, out) -> None:  # pragma: no cover - compiled
    """Clip an image at ``threshold`` (float32) into float32 ``out``: non-finite and |x| < threshold become 0.

    As ``survey.model.noise.clip_symmetric``: the pixel is cast to float32 first (a float64
    too large for float32 becomes inf, then 0), and compared with the threshold in float32.

    Parameters
    ----------
    pixels : numpy.ndarray
        1-D float32 or float64 pixels, native byte order.
    threshold : numpy.float32
        The clip level.
    out : numpy.ndarray
        1-D float32 of the same length, written.
    """
    for i in range(pixels.size):
        out[i] = _clipped(pixels[i], threshold)


@_jit
def _clipped(pixel, threshold):  # pragma: no cover - compiled
    """One pixel as ``clip`` leaves it: cast to float32, then 0 if non-finite or below ``threshold``."""
    value = np.float32(pixel)
    if not np.isfinite(value) or abs(value) < threshold:
        return np.float32(0.0)
    return value


@_jit
def clip_and_mask(pixels, threshold, out, no_data) -> None:  # pragma: no cover - compiled
    """``clip`` and, in the same pass, the no-data mask of a raw image: non-finite or exactly zero as read.

    Parameters
    ----------
    pixels, threshold, out
        As for ``clip``.
    no_data : numpy.ndarray
        1-D bool of the same length, written: True where the pixel holds no data.
    """
    for i in range(pixels.size):
        original = pixels[i]
        no_data[i] = (not np.isfinite(original)) or original == 0
        out[i] = _clipped(original, threshold)


def native(pixels: np.ndarray) -> np.ndarray:
    """``pixels`` as a C-contiguous array in this machine's byte order (FITS data is big-endian; numba needs native)."""
    pixels = np.asarray(pixels)
    if not pixels.dtype.isnative:
        pixels = pixels.astype(pixels.dtype.newbyteorder("="))
    return np.ascontiguousarray(pixels)


@_jit
def gather(image, x0, y0, fill, planes, channel, peaks) -> None:  # pragma: no cover - compiled
    """Cut ``planes[n, channel] = image[y0[n]:y0[n]+size, x0[n]:x0[n]+size]`` (``fill`` outside); ``peaks[n]`` its max.

    ``planes`` is the caller's C-contiguous (N, bands, size, size) batch: knowing the
    layout, the compiler turns a row's copy into vector moves (a view of one band, with
    unknown strides, copied at half the speed). The peak is kept per column while the rows
    are copied (an elementwise maximum the compiler also vectorises; a running scalar
    maximum it would not, without fast-math) and reduced over the columns at the end.
    Cut-outs wholly inside take a loop without bounds checks; the few across an edge check
    each pixel.

    Parameters
    ----------
    image : numpy.ndarray
        2-D float32 band image, finite.
    x0, y0 : numpy.ndarray
        int64 column and row of each cut-out's first pixel (``cutouts.cutout_corners``).
    fill : numpy.float32
        What pixels outside the image read.
    planes : numpy.ndarray
        C-contiguous (N, bands, size, size) float32 batch, written in band ``channel``.
    channel : int
        The band's index in ``planes``.
    peaks : numpy.ndarray
        (N,) float32, written: each cut-out's brightest pixel.
    """
    ny, nx = image.shape
    size = planes.shape[2]
    lanes = np.empty(size, planes.dtype)
    for n in range(x0.size):
        top, left = y0[n], x0[n]
        if top >= 0 and left >= 0 and top + size <= ny and left + size <= nx:
            for col in range(size):
                lanes[col] = image[top, left + col]
            for row in range(size):
                for col in range(size):
                    value = image[top + row, left + col]
                    planes[n, channel, row, col] = value
                    lanes[col] = value if value > lanes[col] else lanes[col]
        else:
            lanes[:] = -np.inf
            for row in range(size):
                y = top + row
                for col in range(size):
                    x = left + col
                    value = image[y, x] if 0 <= y < ny and 0 <= x < nx else fill
                    planes[n, channel, row, col] = value
                    lanes[col] = value if value > lanes[col] else lanes[col]
        best = lanes[0]
        for col in range(1, size):
            best = lanes[col] if lanes[col] > best else best
        peaks[n] = best
