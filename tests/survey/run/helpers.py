"""Shared by the run tests: the small region, argument defaults, sources that fail on purpose, a tile's rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from survey.exceptions import BadInputError, RemoteServiceError
from survey.images.base import BandImage
from survey.images.mock import MockSky, MockSource
from survey.model.normalisation import Normalisation
from survey.run.arguments import SurveyArguments
from survey.run.stages import preprocess_tile
from tests.survey.survey_helpers import NORMALISATION

SMALL_REGION = "cone:339.6,-39.6,1.2"
"""Six order-5 tiles of the mock sky (1,382 windows at the default window order 10) where the
stand-in's detections form a group spanning several tiles: the merge must cross tile boundaries."""


def survey_args(model: Path, output: Path, **kwargs) -> SurveyArguments:
    defaults = {"region": SMALL_REGION, "progress": False, "match_catalogs": ()}
    return SurveyArguments(model=model, output=output, **{**defaults, **kwargs})


def tile_rows(args, tile, source=None, normalisation=NORMALISATION):
    return preprocess_tile({"tile": tile, "targets": ""}, source=source or MockSource(MockSky(seed=0)),
                           tile_order=args.tile_order, window_order=args.window_order, region=args.region_spec,
                           normalisation=normalisation)


class ZeroSource(MockSource):
    """The mock sky with one band zero-filled everywhere (no data)."""

    def read_field(self, request):
        images = super().read_field(request)
        band = images["103-134"]
        images["103-134"] = BandImage(band.band, np.zeros_like(band.data), band.wcs, "zeros.fits")
        return images


class FailingSource(MockSource):
    """The mock sky; ``bad_tile`` fails like an unreadable file, ``crash_tile`` like a bug."""

    def __init__(self, *, bad_tile: int = -1, crash_tile: int = -1):
        super().__init__(MockSky(seed=0))
        self.bad_tile, self.crash_tile = bad_tile, crash_tile

    def read_field(self, request):
        if request.key.endswith(f"/{self.bad_tile}"):
            raise BadInputError(f"{request.key} (/data/field {self.bad_tile}.fits)", "is not a readable FITS file")
        if request.key.endswith(f"/{self.crash_tile}"):
            raise RuntimeError(f"simulated crash while reading {request.key}")
        return super().read_field(request)


class OfflineSource(MockSource):
    """SkyView as seen without a network."""

    def read_field(self, request):
        raise RemoteServiceError(f"SkyView could not be reached for {request.key} (connection refused)")


LOG_SCALING = Normalisation("log-minmax-sym", -1.2, 2.9, log_scale=0.054)
