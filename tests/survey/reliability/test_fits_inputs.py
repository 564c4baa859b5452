"""Bad FITS inputs in a ``fits:DIR`` source: each fails only the tiles and targets it would serve.

One directory holds a good set, a set with infinite pixels, a set that no WCS places on the
sky, and one set for each kind of ``BAD_KINDS``, every set in its own order-5 tile. One
scan and one ``targets --catalog images`` run over it (sharing the corpus's Ray) are
checked from every bad input's side: its tile or target fails with a message naming the
tile and the file, the good tiles are written, the manifest and the summary name every
unusable set, and nothing is written outside the output directory. The unit tests at the
end check the same inputs without Ray, where the message is made.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from survey.exceptions import BadInputError, HaloSurveyError
from survey.images.fitsdir import FitsDirectorySource
from survey.sky.fields import tile_request
from tests.survey.reliability.conftest import (
    BAD_KINDS,
    Snapshot,
    candidate_tiles,
    manifest_of,
    run_cli,
    scan_argv,
    tile_of,
    write_bad_set,
)

pytestmark = pytest.mark.ray

DEC = -30.0
KINDS = ["good", "inf_pixels", "no_wcs", *BAD_KINDS]
POSITIONS = {kind: (10.0 + 8.0 * i, DEC) for i, kind in enumerate(KINDS)}
NAMES = {kind: f"src_{kind}" for kind in KINDS}


@pytest.fixture(scope="module")
def fits_dir(tmp_path_factory) -> tuple[Path, dict[str, dict[str, Path]]]:
    root = tmp_path_factory.mktemp("corpus")
    directory = root / "fits dir"
    files = {kind: write_bad_set(directory, NAMES[kind], kind, ra_deg=ra, dec_deg=dec, seed=i)
             for i, (kind, (ra, dec)) in enumerate(POSITIONS.items())}
    return directory, files


@pytest.fixture(scope="module")
def scan(ray_shared, model, fits_dir, tmp_path_factory):
    """One scan over a tile of every set, as a user runs it."""
    directory, _ = fits_dir
    tiles = ",".join(str(tile_of(*POSITIONS[k])) for k in KINDS)
    output = tmp_path_factory.mktemp("scan") / "out"
    snapshot = Snapshot(directory.parent)
    result = run_cli(scan_argv(model, output, "--source", f"fits:{directory}", "--region", f"tiles:5:{tiles}"))
    snapshot.assert_unchanged()
    return result, output


@pytest.fixture(scope="module")
def targets(ray_shared, model, fits_dir, tmp_path_factory):
    """One ``targets --catalog images`` run: every placeable set is a target."""
    directory, _ = fits_dir
    output = tmp_path_factory.mktemp("targets") / "out"
    snapshot = Snapshot(directory.parent)
    result = run_cli(scan_argv(model, output, "--source", f"fits:{directory}", "--catalog", "images",
                                          "--region", "allsky", mode="targets"))
    snapshot.assert_unchanged()
    return result, output


def _failure(manifest: dict, kind: str) -> str:
    tile = tile_of(*POSITIONS[kind])
    errors = [f["error"] for f in manifest["failed"] if f["tile"] == tile]
    assert len(errors) == 1, f"tile {tile} of {kind}: failures {errors}"
    return errors[0]


# -- the scan -------------------------------------------------------------------------


def test_the_scan_ends_partial_with_the_good_tiles_written(scan):
    result, output = scan
    manifest = manifest_of(output)
    assert result.rc == 1 and manifest["status"] == "partial"
    assert manifest["tiles_done"] == 2 and len(manifest["failed"]) == len(KINDS) - 2
    assert "Traceback" not in result.text


@pytest.mark.parametrize("kind", list(BAD_KINDS))
def test_a_bad_set_fails_its_own_tile_naming_the_file(scan, fits_dir, kind):
    result, output = scan
    band, text = BAD_KINDS[kind]
    error = _failure(manifest_of(output), kind)
    assert f"tile 5/{tile_of(*POSITIONS[kind])}" in error and text in error
    named = fits_dir[1][kind][band].name if kind != "missing_band" else repr(NAMES[kind].upper().replace("_", " "))
    assert named.lower() in error.lower()
    assert error in result.out  # the summary prints it, as the manifest records it


def test_a_set_without_any_wcs_fails_only_the_tile_at_its_place_and_is_named(scan, fits_dir):
    result, output = scan
    manifest = manifest_of(output)
    error = _failure(manifest, "no_wcs")
    assert "no image set under" in error and "cannot be placed on the sky" in error and "SRC NO WCS" in error
    assert any("has no celestial WCS" in p and "src_no_wcs_Gleam72-103" in p for p in manifest["source_problems"])
    assert "input problem image set 'SRC NO WCS'" in result.out


def test_infinite_pixels_are_scored_and_their_windows_flagged(targets):
    import pyarrow.parquet as pq

    _, output = targets
    rows = pq.read_table(output / "candidates" / "dataset").to_pandas()
    row = rows[rows.target_name == "SRC INF PIXELS"].iloc[0]
    assert row["flag_bad_pixels"] and "bad_pixels" in row["flags"]
    good = rows[rows.target_name == "SRC GOOD"].iloc[0]
    assert not good["flag_bad_pixels"]


def test_good_tiles_reach_the_candidate_catalogue_of_a_partial_run(scan):
    _, output = scan
    # A partial run keeps its work catalogue: both good tiles have their done markers.
    from tests.survey.reliability.conftest import done_tiles

    assert done_tiles(output) == {tile_of(*POSITIONS["good"]), tile_of(*POSITIONS["inf_pixels"])}


def test_a_set_without_wcs_far_outside_the_region_does_not_stop_the_scan(ray_shared, model, fits_dir, tmp_path):
    """The issue's case: one set without WCS anywhere in the directory aborted every scan (StopIteration)."""
    directory, _ = fits_dir
    output = tmp_path / "out"
    result = run_cli(scan_argv(model, output, "--source", f"fits:{directory}",
                               "--region", f"tiles:5:{tile_of(*POSITIONS['good'])}"))
    assert result.rc == 0, result.text
    manifest = manifest_of(output)
    assert manifest["status"] == "complete" and manifest["failed"] == []
    assert any("SRC NO WCS" in p for p in manifest["source_problems"])
    assert "input problem image set 'SRC NO WCS'" in result.out
    assert candidate_tiles(output) <= {tile_of(*POSITIONS["good"])}


# -- the same inputs as targets --------------------------------------------------------


def test_targets_fail_as_the_scan_does_never_silently(targets):
    result, output = targets
    manifest = manifest_of(output)
    assert result.rc == 1 and manifest["status"] == "partial"
    assert manifest["targets_skipped"].get("unreadable_images") == 1
    assert "1 image set(s) unreadable (not scored)" in result.out


@pytest.mark.parametrize("kind", list(BAD_KINDS))
def test_a_target_on_a_bad_set_fails_naming_the_target_and_file(targets, kind):
    _, output = targets
    band, text = BAD_KINDS[kind]
    error = _failure(manifest_of(output), kind)
    assert f"target '{NAMES[kind].upper().replace('_', ' ')}'" in error and text in error


def test_good_targets_are_scored_beside_the_bad_ones(targets):
    import pyarrow.parquet as pq

    _, output = targets
    names = set(pq.read_table(output / "candidates" / "dataset", columns=["target_name"]).column(0).to_pylist())
    assert names == {"SRC GOOD", "SRC INF PIXELS"}


# -- without Ray: where the messages are made -------------------------------------------


def test_the_index_names_every_unusable_set(fits_dir):
    directory, _ = fits_dir
    source = FitsDirectorySource(directory)
    problems = "\n".join(source.problems)
    for kind, (_, text) in BAD_KINDS.items():
        assert text in problems or kind == "all_zero_band" or kind == "all_nan_band", kind
    assert [s.name for s in source.unplaceable] == ["SRC NO WCS"]


def test_reading_a_field_of_an_unplaceable_set_is_a_message_not_stopiteration(fits_dir):
    source = FitsDirectorySource(fits_dir[0])
    tile = tile_of(*POSITIONS["no_wcs"])
    with pytest.raises(BadInputError, match=r"cannot be placed on the sky"):
        source.read_field(tile_request(tile, tile_order=5))


def test_a_directory_of_only_unplaceable_sets_names_them(tmp_path):
    write_bad_set(tmp_path, "lost", "no_wcs", ra_deg=10.0, dec_deg=-30.0)
    source = FitsDirectorySource(tmp_path)
    with pytest.raises(HaloSurveyError, match=r"'LOST'"):
        source.read_field(tile_request(tile_of(10.0, -30.0), tile_order=5))
    assert len(source.targets()) == 0 and len(source.unplaced_targets()) == 1
