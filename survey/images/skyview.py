"""GLEAM images from NASA SkyView: an ImageSource that fetches each band through survey.remote.

For a ``FieldRequest`` the source asks SkyView for one image per GLEAM band, centred on
the field, at the band's *native* pixel scale (the classifiers stack the central 64x64
pixels of each band without regridding, so resampling to a common grid would change what
they see). The number of pixels is ``ceil(width_deg / band.pixel_deg)``, and the width
sent to SkyView is that many native pixels, so the answer's CDELT equals the band's.

Three things astroquery's ``SkyView`` does not do for us, and this module adds:

* explicit timeouts: ``SkyView`` sends its form requests with ``timeout=None``; a timeout
  adapter is mounted on its session (``survey.remote.apply_timeout``);
* retries with back-off and a clear ``RemoteServiceError`` (``survey.remote.fetch``);
* an on-disk cache keyed by the *logical* request (survey, centre, pixels, projection),
  not by SkyView's temporary FITS URL, which changes on every call.

Build / fetch / parse stay apart: ``skyview_query`` builds the request without touching
the network, ``SkyViewSource`` fetches, ``parse_skyview_fits`` only parses.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
from astropy.coordinates import SkyCoord

from survey import remote
from survey.exceptions import BadInputError, NoImageError
from survey.images.base import BandImage, ImageSource, read_band_file
from survey.sky.bands import BANDS, Band
from survey.sky.fields import FieldRequest

SKYVIEW_COORDINATES = "J2000"
SKYVIEW_PROJECTION = "Tan"
PIXEL_SCALE_TOLERANCE = 0.01
"""Largest relative difference between the answer's pixel scale and the band's native one."""

OFFLINE_HINT = (
    "the paper's GLEAM FITS files under HALO_DATA_DIR (survey.images.discovery.scan_directory) "
    "or the mock sky (survey.images.mock.MockSource)"
)


def skyview_pixels(width_deg: float, band: Band) -> int:
    """Pixels per side covering ``width_deg`` at ``band``'s native scale (rounded up).

    >>> from survey.sky.bands import band_by_name
    >>> skyview_pixels(0.5, band_by_name("170-231")), skyview_pixels(300 * 0.015556, band_by_name("72-103"))
    (65, 300)
    """
    # The small tolerance keeps an exact multiple of the pixel from rounding up by float noise.
    return max(1, math.ceil(width_deg / band.pixel_deg - 1e-9))


def skyview_query(request: FieldRequest, band: Band) -> dict[str, Any]:
    """What SkyView is asked for one band of ``request``; touches no network.

    The result is both the argument set of astroquery's ``get_image_list`` (via
    ``_astroquery_kwargs``) and the identity of the answer in the cache.
    """
    _check_field(request)
    pixels = skyview_pixels(request.width_deg, band)
    return {
        "survey": band.skyview_survey,
        "ra_deg": round(float(request.ra_deg), 9),
        "dec_deg": round(float(request.dec_deg), 9),
        "pixels": pixels,
        "width_deg": round(pixels * band.pixel_deg, 12),
        "coordinates": SKYVIEW_COORDINATES,
        "projection": SKYVIEW_PROJECTION,
    }


def _check_field(request: FieldRequest) -> None:
    ok = (
        np.isfinite([request.ra_deg, request.dec_deg, request.width_deg]).all()
        and request.width_deg > 0
        and abs(request.dec_deg) <= 90
    )
    if not ok:
        raise BadInputError(
            request.key,
            f"cannot request a SkyView field of width {request.width_deg} deg at "
            f"RA {request.ra_deg}, Dec {request.dec_deg}; need width > 0 and |Dec| <= 90",
        )


def _astroquery_kwargs(query: dict[str, Any]) -> dict[str, Any]:
    width = query["width_deg"] * u.deg
    return {
        "position": SkyCoord(query["ra_deg"], query["dec_deg"], unit="deg", frame="icrs"),
        "survey": query["survey"],
        "pixels": str(query["pixels"]),
        "width": width,
        "height": width,
        "coordinates": query["coordinates"],
        "projection": query["projection"],
        "cache": False,
    }


def parse_skyview_fits(content: bytes, *, band: Band, origin: str, pixels: int | None = None) -> BandImage:
    """A SkyView FITS answer as a BandImage: 2-D float32 pixels and a 2-D celestial WCS.

    Degenerate FREQ/STOKES axes are squeezed by the package's one FITS shim
    (``survey.images.base.read_band_file``). NaN pixels (blank sky outside the survey, or
    SkyView's BLANK) are kept as NaN: flagging or zero-filling them is the caller's job.
    When ``pixels`` is given, the image must be that square size, and its pixel scale must
    be the band's native one (the classifiers rely on it).

    Parameters
    ----------
    content : bytes
        The FITS file SkyView sent (or the cache kept).
    band : Band
        The band asked for; its native pixel scale is checked against the answer's (always,
        within ``PIXEL_SCALE_TOLERANCE``).
    origin : str
        What the image's ``origin`` says (the request, for messages).
    pixels : int, optional
        Side in pixels the answer must have; None skips the size check.

    Returns
    -------
    BandImage
        2-D float32 pixels in Jy/beam, NaN where SkyView has no data, with their WCS.

    Raises
    ------
    ValueError
        Not a FITS image, wrong size or wrong pixel scale (``fetch`` turns this into a
        RemoteServiceError and does not cache the answer).
    """
    with tempfile.TemporaryDirectory(prefix="halo-skyview-") as folder:
        path = Path(folder) / "answer.fits"
        path.write_bytes(content)
        image = read_band_file(path, band, allow_nonfinite=True)
    if pixels is not None and image.data.shape != (pixels, pixels):
        raise ValueError(f"image is {image.data.shape[1]}x{image.data.shape[0]} pixels; asked for {pixels}x{pixels}")
    if abs(image.pixel_deg / band.pixel_deg - 1.0) > PIXEL_SCALE_TOLERANCE:
        raise ValueError(f"pixel scale {image.pixel_deg:.6g} deg differs from band {band.name}'s native {band.pixel_deg:.6g} deg")
    return dataclasses.replace(image, origin=origin)


class SkyViewSource(ImageSource):
    """Four-band GLEAM images of any field, fetched from SkyView and cached on disk.

    Parameters
    ----------
    url : str, optional
        SkyView's form URL (default ``astroquery.skyview.conf.url``); tests point it at a
        fake server on 127.0.0.1.
    timeout_s, retries : optional
        Per-attempt timeout (every HTTP request, the form ones included) and number of
        attempts; default ``survey.config.conf.timeout`` / ``conf.retries``.
    backoff_s : float
        First pause between attempts; doubles each time.
    use_cache : bool
        Keep answers in ``survey.config.cache_dir()`` (expiring after ``conf.cache_days``).
    bands : sequence of Band
        Bands to fetch (default the four GLEAM bands).
    """

    name = "skyview"

    def __init__(
        self,
        *,
        url: str | None = None,
        timeout_s: float | None = None,
        retries: int | None = None,
        backoff_s: float = remote.BACKOFF_S,
        use_cache: bool = True,
        bands: tuple[Band, ...] = BANDS,
    ):
        if url is None:
            from astroquery.skyview import conf as skyview_conf

            url = skyview_conf.url
        self.url = url
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.use_cache = use_cache
        self.bands = tuple(bands)
        self._client: Any = None

    def __getstate__(self) -> dict[str, Any]:
        # The astroquery client holds a live HTTP session: rebuild it in each Ray worker.
        return {**self.__dict__, "_client": None}

    def describe(self) -> str:
        return f"skyview {self.url}"

    def read_field(self, request: FieldRequest) -> dict[str, BandImage]:
        """Fetch (or read from the cache) every band of ``request``.

        Raises
        ------
        BadInputError
            The request cannot describe a SkyView field (non-finite, width <= 0).
        RemoteServiceError
            A band could not be fetched; the message names the request key, the band and
            the URL, and says how to work offline.
        """
        return {band.name: self.read_band(request, band) for band in self.bands}

    def read_band(self, request: FieldRequest, band: Band) -> BandImage:
        """One band of ``request`` (see ``read_field``)."""
        query = skyview_query(request, band)
        remote_request = remote.RemoteRequest(
            "SkyView", self.url, query, label=f"{request.key}, band {band.name} ({band.skyview_survey})"
        )
        origin = f"skyview {band.skyview_survey} at ({query['ra_deg']:.5f}, {query['dec_deg']:.5f}), {query['pixels']} px"
        return remote.fetch(
            remote_request,
            lambda timeout: self._download(query, timeout),
            parse=lambda content: parse_skyview_fits(content, band=band, origin=origin, pixels=query["pixels"]),
            timeout_s=self.timeout_s,
            retries=self.retries,
            backoff_s=self.backoff_s,
            use_cache=self.use_cache,
            offline_hint=OFFLINE_HINT,
        )

    def _download(self, query: dict[str, Any], timeout_s: float) -> bytes:
        """One attempt: ask SkyView for the image URL, then download the FITS bytes."""
        from astroquery import cache_conf

        client = self._skyview(timeout_s)
        # astroquery would also pickle the form pages into its own cache; ours holds the FITS.
        with cache_conf.set_temp("cache_active", False):
            urls = client.get_image_list(**_astroquery_kwargs(query))
        if not urls:
            raise NoImageError(f"SkyView offered no FITS link for {query['survey']} at ({query['ra_deg']}, {query['dec_deg']})")
        return remote.http_bytes(client._session, "GET", urls[0], timeout_s=timeout_s)

    def _skyview(self, timeout_s: float):
        """The astroquery SkyView client, pointed at ``self.url``, every request timed."""
        if self._client is None:
            from astroquery.skyview import SkyViewClass

            client = SkyViewClass()
            client.URL = self.url
            self._client = client
        remote.apply_timeout(self._client._session, timeout_s)
        return self._client
