"""survey.images.skyview: SkyViewSource against a fake SkyView on 127.0.0.1 (form page, link page, FITS)."""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import numpy as np
import pytest

from survey.exceptions import BadInputError, RemoteServiceError
from survey.images.skyview import SkyViewSource, parse_skyview_fits, skyview_pixels, skyview_query
from survey.sky.bands import BANDS, band_by_name
from survey.sky.fields import FieldRequest
from survey.testing import make_wcs, write_band_fits
from tests.survey.fake_services import (
    FakeServer,
    Seen,
    _isolated_network_state,  # noqa: F401  (autouse fixture)
    closed_port_url,
    silent_server,
)

FORM_PATH = "/current/cgi/basicform.pl"
FIELD = FieldRequest("tile 5/1234", ra_deg=3.58, dec_deg=-30.39, width_deg=0.5)
SURVEY_BANDS = {band.skyview_survey: band for band in BANDS}


def _form_page(seen: Seen) -> tuple[int, str, bytes]:
    """SkyView's query form as astroquery parses it: a form with an action and survey lists."""
    options = "".join(f"<option>{survey}</option>" for survey in SURVEY_BANDS)
    html = (
        '<html><body><form method="get" action="runquery.pl">'
        '<input type="text" name="Position" value="">'
        f'<select name="survey" id="Radio" multiple>{options}</select>'
        '<input type="submit" value="Submit"></form></body></html>'
    )
    return 200, "text/html", html.encode()


class FakeSkyView:
    """Form page -> link page -> FITS generated for the query (size, centre, band scale)."""

    def __init__(self, tmp_path: Path, *, fits_override: bytes | None = None, links: bool = True):
        self.tmp_path = tmp_path
        self.fits_override = fits_override
        self.links = links
        self.queries: dict[str, dict[str, str]] = {}
        self.server = FakeServer({FORM_PATH: _form_page, "/current/cgi/runquery.pl": self._run_query,
                                  "/tempspace/fits/image.fits": self._fits})

    @property
    def url(self) -> str:
        return self.server.url + FORM_PATH

    def _run_query(self, seen: Seen) -> tuple[int, str, bytes]:
        token = str(len(self.queries))
        self.queries[token] = {k: v[0] for k, v in seen.query.items()}
        link = f'<a href="../../tempspace/fits/image.fits?id={token}">FITS</a>' if self.links else "no images"
        return 200, "text/html", f"<html><body>{link}</body></html>".encode()

    def _fits(self, seen: Seen) -> tuple[int, str, bytes]:
        if self.fits_override is not None:
            return 200, "application/fits", self.fits_override
        query = self.queries[seen.query["id"][0]]
        band = SURVEY_BANDS[query["survey"]]
        ra, dec = (float(v) for v in query["Position"].split())
        pixels = int(query["pixels"])
        wcs = make_wcs(ra_deg=ra, dec_deg=dec, pixel_deg=float(query["size"].split(",")[0]) / pixels, shape=(pixels, pixels))
        data = np.random.default_rng(pixels).normal(0, 0.01, (pixels, pixels)).astype(np.float32)
        path = write_band_fits(self.tmp_path / f"{band.name}.fits", data, wcs, extra_axes=2)  # FREQ + STOKES
        return 200, "application/fits", path.read_bytes()


@pytest.fixture
def skyview(tmp_path):
    fake = FakeSkyView(tmp_path)
    yield fake
    fake.server.stop()


def _source(url: str, **kwargs) -> SkyViewSource:
    return SkyViewSource(url=url, **{"timeout_s": 2.0, "retries": 1, "backoff_s": 0.0, **kwargs})


# --------------------------------------------------------------------------------------
# Building the request (offline)
# --------------------------------------------------------------------------------------


def test_pixels_cover_the_width_at_native_scale():
    assert skyview_pixels(0.5, band_by_name("170-231")) == 65  # 0.5 / 0.0077778 = 64.3
    assert skyview_pixels(300 * 0.0094444, band_by_name("139-170")) == 300  # exact multiple stays exact


def test_query_names_the_survey_and_keeps_the_native_scale():
    band = band_by_name("72-103")
    query = skyview_query(FIELD, band)
    assert query["survey"] == "GLEAM 72-103 MHz"
    assert query["width_deg"] == pytest.approx(query["pixels"] * band.pixel_deg)
    assert query["width_deg"] >= FIELD.width_deg
    assert (query["coordinates"], query["projection"]) == ("J2000", "Tan")


def test_bad_field_is_refused_before_any_request():
    with pytest.raises(BadInputError, match="tile 9: cannot request a SkyView field of width -1"):
        skyview_query(FieldRequest("tile 9", 10.0, 0.0, -1.0), BANDS[0])


# --------------------------------------------------------------------------------------
# Fetching from the fake SkyView
# --------------------------------------------------------------------------------------


def test_read_field_returns_four_native_scale_images(skyview):
    images = _source(skyview.url).read_field(FIELD)
    assert list(images) == [band.name for band in BANDS]
    for band in BANDS:
        image = images[band.name]
        pixels = skyview_pixels(FIELD.width_deg, band)
        assert image.data.shape == (pixels, pixels) and image.data.dtype == np.float32
        assert image.wcs.naxis == 2  # FREQ/STOKES squeezed away
        assert image.pixel_deg == pytest.approx(band.pixel_deg, rel=1e-6)
        ra, dec = image.centre_radec
        assert (ra, dec) == (pytest.approx(FIELD.ra_deg, abs=1e-6), pytest.approx(FIELD.dec_deg, abs=1e-6))
        assert image.origin.startswith(f"skyview {band.skyview_survey}")
    asked = [q for q in skyview.queries.values()]
    assert [q["survey"] for q in asked] == [band.skyview_survey for band in BANDS]
    assert {(q["coordinates"], q["projection"]) for q in asked} == {("J2000", "Tan")}


def test_retry_after_one_failure(skyview):
    skyview.server.fail_next(1, status=503)
    images = _source(skyview.url, retries=2).read_field(FIELD)
    assert len(images) == 4
    assert skyview.server.seen[0].path == FORM_PATH  # the failed first request was retried


def test_second_read_comes_from_the_cache(skyview):
    first = _source(skyview.url).read_field(FIELD)
    requests_before = len(skyview.server.seen)
    skyview.server.stop()
    second = _source(skyview.url).read_field(FIELD)
    assert len(skyview.server.seen) == requests_before
    for name in first:
        np.testing.assert_array_equal(first[name].data, second[name].data)


def test_dead_server_fails_fast_naming_key_band_and_url():
    url = closed_port_url() + FORM_PATH
    start = time.monotonic()
    expected = r"(?s)SkyView: tile 5/1234, band 72-103 \(GLEAM 72-103 MHz\) \(http://127\.0\.0\.1:\d+/current.*No network\?"
    with pytest.raises(RemoteServiceError, match=expected):
        _source(url, timeout_s=1.0).read_field(FIELD)
    assert time.monotonic() - start < 3.0


def test_silent_server_times_out_despite_astroquery_sending_no_timeout():
    sock, base = silent_server()
    try:
        start = time.monotonic()
        with pytest.raises(RemoteServiceError, match="timed out"):
            _source(base + FORM_PATH, timeout_s=0.3).read_field(FIELD)
        assert time.monotonic() - start < 3.0
    finally:
        sock.close()


def test_non_fits_answer_is_rejected_and_not_cached(tmp_path):
    fake = FakeSkyView(tmp_path, fits_override=b"<html>Internal error</html>")
    try:
        with pytest.raises(RemoteServiceError, match="band 72-103.*answered with something unusable"):
            _source(fake.url).read_field(FIELD)
        fake.fits_override = None
        assert len(_source(fake.url).read_field(FIELD)) == 4  # nothing bad was cached
    finally:
        fake.server.stop()


def test_answer_without_a_fits_link(tmp_path):
    fake = FakeSkyView(tmp_path, links=False)
    try:
        with pytest.raises(RemoteServiceError, match="no FITS link for GLEAM 72-103 MHz"):
            _source(fake.url, retries=3).read_field(FIELD)
        assert sum(seen.path.endswith("runquery.pl") for seen in fake.server.seen) == 1  # not retried
    finally:
        fake.server.stop()


def test_wrong_pixel_scale_is_rejected(tmp_path):
    band = band_by_name("170-231")
    wrong = write_band_fits(tmp_path / "wrong.fits", np.zeros((65, 65), np.float32),
                            make_wcs(ra_deg=3.58, dec_deg=-30.39, pixel_deg=2 * band.pixel_deg, shape=(65, 65)))
    with pytest.raises(ValueError, match="differs from band 170-231's native"):
        parse_skyview_fits(wrong.read_bytes(), band=band, origin="test", pixels=65)


def test_nan_pixels_are_kept_for_the_caller(tmp_path):
    band = band_by_name("139-170")
    data = np.full((8, 8), np.nan, np.float32)
    path = write_band_fits(tmp_path / "blank.fits", data, make_wcs(ra_deg=0, dec_deg=0, pixel_deg=band.pixel_deg, shape=(8, 8)))
    image = parse_skyview_fits(path.read_bytes(), band=band, origin="test", pixels=8)
    assert np.isnan(image.data).all()


def test_source_pickles_for_ray_workers(skyview):
    source = _source(skyview.url)
    source.read_band(FIELD, BANDS[0])
    clone = pickle.loads(pickle.dumps(source))
    assert clone.url == source.url and clone._client is None
