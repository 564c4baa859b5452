"""What an image is, where images come from, and the one door to FITS files and WCS objects.

Everything that touches FITS headers or astropy WCS objects lives here, so the rest of the
code sees only a 2-D float32 array plus a 2-D celestial WCS (``BandImage``) and asks this
module to map sky positions to pixels and back. Radio images with extra FREQ/STOKES axes
are squeezed to two dimensions in this one file.

``ImageSource`` is the interface of the three sources (``survey.images.fitsdir``,
``survey.images.skyview``, ``survey.images.mock``). Besides reading fields it declares
what a source can tell about itself (which positions it covers, which targets its images
are centred on, the halos it injected), each with a default for sources that cannot.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_scales

from survey.exceptions import BadInputError
from survey.sky.bands import Band, band_by_name
from survey.sky.fields import FieldRequest

if TYPE_CHECKING:
    from astropy.table import Table

    from survey.sky.tiling import Region

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

# --------------------------------------------------------------------------------------
# WCS: the only functions that call astropy.wcs
# --------------------------------------------------------------------------------------


def tan_wcs(
    *, ra_deg: float, dec_deg: float, pixel_deg: float, shape: tuple[int, int], crpix: tuple[float, float] | None = None
) -> WCS:
    """A 2-D north-up RA---TAN/DEC--TAN WCS; by default the reference pixel is the image centre.

    Parameters
    ----------
    ra_deg, dec_deg : float
        Reference position (CRVAL), ICRS degrees: the tangent point.
    pixel_deg : float
        Pixel size in degrees; CDELT is ``(-pixel_deg, pixel_deg)``, so RA grows to the left
        (east left, as on the sky).
    shape : tuple of int
        Image shape ``(ny, nx)``, numpy order.
    crpix : tuple of float, optional
        Reference pixel ``(x, y)`` in FITS 1-based pixels; default the centre,
        ``((nx + 1) / 2, (ny + 1) / 2)``.

    Returns
    -------
    astropy.wcs.WCS
        A two-axis celestial WCS.

    Examples
    --------
    >>> float(pixel_scale_deg(tan_wcs(ra_deg=10.0, dec_deg=-30.0, pixel_deg=0.01, shape=(8, 8))))
    0.01
    """
    ny, nx = shape
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra_deg, dec_deg]
    wcs.wcs.crpix = list(crpix) if crpix else [(nx + 1) / 2.0, (ny + 1) / 2.0]
    wcs.wcs.cdelt = [-pixel_deg, pixel_deg]
    return wcs


def world_to_pixel(wcs: WCS, ra_deg: npt.ArrayLike, dec_deg: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Zero-based (x, y) pixel positions of sky positions (distortions included, if the WCS has any).

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        2-D celestial WCS of the image.
    ra_deg, dec_deg : array_like
        Positions in degrees, in the WCS's own frame (ICRS for GLEAM images), broadcast
        together.

    Returns
    -------
    x, y : numpy.ndarray
        float64 column and row, 0-based (pixel centres are integers), shaped like the input.
    """
    x, y = wcs.all_world2pix(np.asarray(ra_deg, float), np.asarray(dec_deg, float), 0)
    return np.asarray(x, float), np.asarray(y, float)


def pixel_to_world(wcs: WCS, x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """(RA, Dec) in degrees, in the WCS's own frame, of zero-based pixel positions.

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        2-D celestial WCS of the image.
    x, y : array_like
        Column and row, 0-based, broadcast together.

    Returns
    -------
    ra_deg, dec_deg : numpy.ndarray
        float64 positions in degrees, shaped like the input.
    """
    ra, dec = wcs.all_pix2world(np.asarray(x, float), np.asarray(y, float), 0)
    return np.asarray(ra, float), np.asarray(dec, float)


def pixel_scale_deg(wcs: WCS) -> float:
    """Pixel scale in degrees (mean of the two axes' projected scales)."""
    return float(np.mean(proj_plane_pixel_scales(wcs)))


def reference_radec(wcs: WCS) -> tuple[float, float]:
    """(RA, Dec) of the WCS's reference point (CRVAL): the centre the paper's cut-out files were made on."""
    ra, dec = wcs.wcs.crval[:2]
    return float(ra), float(dec)


def crop_wcs(wcs: WCS, *, x0: int, y0: int, x1: int, y1: int) -> WCS:
    """The WCS of ``data[y0:y1, x0:x1]``: sky positions map to the same pixels of the crop.

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        2-D celestial WCS of the full image.
    x0, y0, x1, y1 : int
        The crop as 0-based slice bounds (start inclusive, end exclusive), as used on
        ``data``.

    Returns
    -------
    astropy.wcs.WCS
        The full image's WCS with its reference pixel shifted by ``(x0, y0)``.
    """
    return wcs[y0:y1, x0:x1]


# --------------------------------------------------------------------------------------
# Images and their sources
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BandImage:
    """One band of one field: pixels and the celestial WCS that places them on the sky.

    Attributes
    ----------
    band : Band
        Which GLEAM band the pixels belong to.
    data : numpy.ndarray
        2-D float32 image, shape (ny, nx), in Jy/beam. May be a memory map.
    wcs : astropy.wcs.WCS
        2-D celestial WCS of ``data``.
    origin : str
        Where the pixels came from (a file path, ``"mock ..."``, ``"skyview ..."``); used in messages.
    """

    band: Band
    data: np.ndarray
    wcs: WCS
    origin: str

    @property
    def pixel_deg(self) -> float:
        """Pixel scale of this image in degrees (mean of |CDELT| along both axes)."""
        return pixel_scale_deg(self.wcs)

    @property
    def centre_radec(self) -> tuple[float, float]:
        """(RA, Dec) in degrees of the image's central pixel."""
        ny, nx = self.data.shape
        sky = self.wcs.pixel_to_world((nx - 1) / 2.0, (ny - 1) / 2.0)
        return float(sky.icrs.ra.deg), float(sky.icrs.dec.deg)


class ImageSource(ABC):
    """Where four-band GLEAM pixels come from: SkyView, local FITS, or the mock sky.

    Implementations return one BandImage per band covering the requested field at the
    band's native pixel scale, and raise BadInputError / RemoteServiceError naming
    ``request.key`` when they cannot.
    """

    name: str = "abstract"

    @abstractmethod
    def read_field(self, request: FieldRequest) -> dict[str, BandImage]:
        """Return ``{band name: BandImage}`` for all four bands covering ``request``."""

    def describe(self) -> str:
        """One line for manifests and provenance."""
        return self.name

    def covers(self, ra_deg: npt.ArrayLike, dec_deg: npt.ArrayLike) -> BoolArray:
        """True where this source has images of a position in all four bands.

        ``targets`` plans only the targets a source covers and counts the rest as
        ``outside_images``. The default (SkyView, the mock sky) covers the whole sky.
        """
        return np.ones(np.shape(np.atleast_1d(np.asarray(ra_deg, float))), bool)

    def targets(self) -> Table:
        """``name``, ``ra``, ``dec`` of the fields this source's images are centred on (``targets --catalog images``).

        Only a directory of image sets has such fields; the default raises BadInputError.
        """
        raise BadInputError(f"--source {self.name}", "has no image sets to use as targets; pass --source fits:DIR")

    @property
    def problems(self) -> list[str]:
        """Inputs found unusable before any field is read (files, image sets), one line each naming them.

        A run records them in its manifest and summary whether or not a tile needs them;
        the default (SkyView, the mock sky) has none.
        """
        return []

    def unplaced_targets(self) -> list[str]:
        """Image sets that ``targets()`` cannot list because nothing places them on the sky, one line each.

        ``targets --catalog images`` counts them as targets that could not be scored. The
        default has none.
        """
        return []

    def truth(self, region: Region) -> Table | None:
        """The halos this source injected inside ``region`` (``ra``, ``dec``, ...), or None for real sky.

        A synthetic sky knows its ground truth, so a run over it reports how many injected
        halos it recovered; real images return None.
        """
        return None



# --------------------------------------------------------------------------------------
# FITS files: the only functions that call astropy.io.fits
# --------------------------------------------------------------------------------------


def _first_image_hdu(hdul: fits.HDUList, path: Path):
    for hdu in hdul:
        if getattr(hdu, "is_image", False) and hdu.data is not None and hdu.data.ndim >= 2:
            return hdu
    raise BadInputError(path, "contains no image HDU with at least two dimensions")


def _celestial_wcs(header: fits.Header, path: Path) -> WCS:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        warnings.simplefilter("ignore", AstropyWarning)
        try:
            wcs = WCS(header)
        except Exception as exc:  # astropy raises several types for broken headers
            raise BadInputError(path, f"has an unreadable WCS ({exc})") from exc
    if not wcs.has_celestial:
        raise BadInputError(path, "has no celestial WCS (RA/Dec axes): cannot place it on the sky")
    return wcs.celestial


def _squeeze_to_2d(data: np.ndarray, path: Path) -> np.ndarray:
    """Drop length-1 axes (FREQ, STOKES) so a radio cube plane becomes a 2-D image."""
    squeezed = data.reshape([n for n in data.shape if n != 1]) if data.ndim > 2 else data
    if squeezed.ndim != 2:
        raise BadInputError(
            path, f"is not a 2-D image: shape {data.shape} has {squeezed.ndim} axes longer than 1; expected 2"
        )
    return squeezed


def _open_fits(path: Path, *, lazy: bool) -> fits.HDUList:
    """``fits.open`` with its failures, and its warning about a truncated file, as a BadInputError naming ``path``.

    astropy only warns when a file is shorter than its headers say (a copy cut short); the
    pixels past the end would then fail later, or, memory-mapped, fault the process.
    """
    if path.is_file() and path.stat().st_size == 0:
        raise BadInputError(path, "is empty (0 bytes): copy the file again")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AstropyWarning)
        try:
            hdul = fits.open(path, memmap=lazy, lazy_load_hdus=False)
        except FileNotFoundError as exc:
            raise BadInputError(path, "does not exist") from exc
        except (OSError, ValueError, TypeError) as exc:
            raise BadInputError(path, f"is not a readable FITS file ({exc})") from exc
    truncated = [str(w.message) for w in caught if "truncated" in str(w.message)]
    if truncated:
        hdul.close()
        raise BadInputError(path, f"is truncated ({truncated[0]}); copy the file again")
    return hdul


def read_band_file(path: str | Path, band: str | Band, *, allow_nonfinite: bool = False, lazy: bool = False) -> BandImage:
    """Read one band image: 2-D float32 pixels plus its celestial WCS.

    Parameters
    ----------
    path : path-like
        FITS file.
    band : str or Band
        Which GLEAM band the file holds (the files carry no frequency keywords).
    allow_nonfinite : bool
        Training files must be finite; survey images may have NaN blocks (no data), which
        the caller turns into flagged, zero-filled regions.
    lazy : bool
        Keep the pixels memory-mapped (mosaics); otherwise read them into memory.

    Returns
    -------
    BandImage
        The first image HDU with at least two axes, squeezed to 2-D, with its celestial
        WCS and ``origin`` set to the path. The pixels are float32 in memory, or with
        ``lazy`` the memory map in the file's own type.

    Raises
    ------
    BadInputError
        Naming the file: empty, truncated, not FITS, no image, not 2-D, no celestial WCS, NaN/inf pixels.
    """
    path = Path(path)
    band = band if isinstance(band, Band) else band_by_name(band)
    hdul = _open_fits(path, lazy=lazy)
    with hdul:
        try:
            hdu = _first_image_hdu(hdul, path)
            data = _squeeze_to_2d(hdu.data, path)
        except (OSError, ValueError, TypeError) as exc:
            if isinstance(exc, BadInputError):
                raise
            raise BadInputError(path, f"has unreadable pixel data ({exc})") from exc
        wcs = _celestial_wcs(hdu.header, path)
        data = data if lazy else np.array(data, dtype=np.float32)
    if not allow_nonfinite:
        bad = int(np.count_nonzero(~np.isfinite(data)))
        if bad:
            raise BadInputError(path, f"has {bad} NaN/inf pixels ({bad / data.size:.1%}); expected a finite image")
    return BandImage(band=band, data=data, wcs=wcs, origin=str(path))


def write_band_fits(path: str | Path, data: np.ndarray, wcs: WCS, *, extra_axes: int = 0) -> Path:
    """Write an image with its WCS; ``extra_axes`` adds degenerate FREQ/STOKES axes like radio cubes.

    Parameters
    ----------
    path : path-like
        FITS file to write; an existing file is overwritten.
    data : numpy.ndarray
        2-D image, shape (ny, nx), written in its own dtype to the primary HDU.
    wcs : astropy.wcs.WCS
        2-D celestial WCS of ``data``, written into the header.
    extra_axes : int
        0, 1 (FREQ) or 2 (FREQ and STOKES) length-1 axes to add after the two celestial
        ones, as in radio cubes; tests use them to check that ``read_band_file`` squeezes.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    header = wcs.to_header()
    if extra_axes:
        data = data.reshape((1,) * extra_axes + data.shape)
        for i, ctype in enumerate(["FREQ", "STOKES"][:extra_axes], start=3):
            header[f"CTYPE{i}"], header[f"CRVAL{i}"], header[f"CDELT{i}"], header[f"CRPIX{i}"] = ctype, 1.0, 1.0, 1.0
    path = Path(path)
    fits.PrimaryHDU(data=data, header=header).writeto(path, overwrite=True)
    return path
