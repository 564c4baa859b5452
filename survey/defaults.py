"""The names and defaults a user sees on the command line, in a module that imports nothing heavy.

``halo-survey --help`` builds every sub-command's parser, and each shows its defaults and
choices. Kept in the modules that use them, they would load healpy, hats, astropy and
matplotlib (two seconds) just to print the help. The modules that use them import them
from here, so each value is defined once.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

# Tiling (survey.sky.tiling)

DEFAULT_TILE_ORDER = 5
"""Tiles of ~1.8 deg (3.36 deg2): a field of ~2.9 deg with margin, small enough to fetch in one go."""

DEFAULT_WINDOW_ORDER = 10
"""Windows 3.44' apart (1,024 per tile), an eighth of the 29.9' cut-out of the 170-231 MHz band.

The classifiers were trained on cut-outs centred on the cluster, and their score falls
off within a few arcminutes of it. ``results/survey_real_check.py`` measured, on the 46
real fields with the shipped model: a centred halo scores >= 0.95 in 70 % of cases, at 4'
in 7 %; a blind scan puts a candidate within one window spacing of 6 of the 23 halos at
order 9 (6.87', the coarsest within a quarter of that cut-out), of 14 at order 10 (4x the windows).
"""

# Runs (survey.run.arguments)

DEFAULT_MODEL = REPO_ROOT / "models" / "halo-classifier.onnx"
"""The shipped classifier (its card ``halo-classifier.card.json`` lies beside it)."""

DEFAULT_OUTPUT = "halo-survey-out"
"""Output directory of a run, relative to the working directory."""

DEMO_REGION = "cone:339.6,-39.6,3"
"""Region of the no-argument demo scan: a 3 deg cone (28 deg2: 18 order-5 tiles, 8,624 windows).

Small enough to finish in minutes on two cores, and placed where ``MockSky(seed=0)``
injected several halos (the densest such spot in the GLEAM footprint);
``tests/survey/test_pipeline.py`` checks that the mock truth has halos here, so a change of
the mock sky cannot silently leave the demo with nothing to find.
"""

DEFAULT_MATCH_RADIUS_ARCMIN = 5.0
"""Cross-match radius: the data README pairs 18 of the 23 paper halos with a PSZ2 cluster within 5'."""

PROVIDERS = ("auto", "cpu", "cuda")
"""ONNX Runtime provider choices (``survey.model.infer.requested_providers``)."""

STAGE_LAYOUTS = ("auto", "fused", "split")
"""``--stages``: where tiles are read and preprocessed (``SurveyArguments.stages``)."""

TILE_WRITERS = ("auto", "actors", "driver")
"""``--tile-writes``: who writes a finished tile's rows (``SurveyArguments.tile_writes``)."""

# Catalogues (survey.catalogs.registry)

CATALOG_NAMES = ("psz2", "mgcls", "mcxc", "cosmos")
"""Catalogues ``load_catalog`` knows."""

CATALOG_FORMATS = ("table", "csv", "votable")
"""Formats ``format_catalog`` writes."""

IMAGES_CATALOG = "images"
"""Pseudo-catalogue of ``targets``: one target per image set of a ``fits:DIR`` source."""

TARGET_CATALOGS = (*CATALOG_NAMES, IMAGES_CATALOG)
"""The names ``targets --catalog`` accepts; it also takes table files (``TARGET_TABLE_SUFFIXES``)."""

TARGET_TABLE_SUFFIXES = (".csv", ".ecsv", ".fits", ".fit", ".vot", ".xml")
"""A ``--catalog`` entry with one of these suffixes is a table of positions (name, ra, dec), not a catalogue name."""

# Reading results (survey.output.query, survey.output.plot)

QUERY_FORMATS: tuple[str, ...] = ("table", "csv", "votable", "fits", "parquet")
"""What ``halo-survey query --format`` writes; FITS and Parquet need a file."""

DEFAULT_TOP = 12
"""Candidates shown in the gallery."""
