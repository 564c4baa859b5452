"""The run manifest (survey.run.manifest): a report written atomically, read back as it was written."""

from __future__ import annotations

import json

from survey.output import paths
from survey.run.manifest import ManifestWriter, RunManifest, read_manifest, write_manifest


def manifest() -> RunManifest:
    return RunManifest(run_id="r2", mode="scan", arguments={"region": "gleam"}, provenance={"model_sha256": "abc"},
                       tiles_planned=3, run_ids=["r1", "r2"])


def test_a_manifest_round_trips_with_its_failures_tiles_and_nodes(tmp_path):
    m = manifest()
    m.record_tile(9, windows=100, node="10.0.0.2")
    m.record_tile(4, windows=50, node="10.0.0.1")
    m.record_tile(7, windows=25, node="10.0.0.2")
    m.record_failure(5, "tile 5/5 (/data/x.fits): is not a readable FITS file")
    write_manifest(m, tmp_path)
    back = read_manifest(tmp_path)
    assert (back.tiles_done, back.windows, back.run_ids) == (3, 175, ["r1", "r2"])
    assert back.failed[0].tile == 5 and "x.fits" in back.failed[0].error
    assert back.nodes == {"10.0.0.1": [4], "10.0.0.2": [7, 9]}  # each node's tiles, sorted


def test_no_manifest_reads_as_none_and_a_write_leaves_no_temporary_file(tmp_path):
    assert read_manifest(tmp_path) is None
    write_manifest(manifest(), tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [paths.MANIFEST_FILENAME]
    assert json.loads(paths.manifest_file(tmp_path).read_text())["manifest_version"] == 1


def test_the_writer_saves_at_most_every_interval_unless_forced(tmp_path):
    m = manifest()
    writer = ManifestWriter(m, tmp_path, interval_s=3600)
    writer.save()
    m.record_tile(1, windows=1, node="n")
    writer.save()  # within the interval: not written
    assert read_manifest(tmp_path).tiles_done == 0
    writer.save(force=True)
    assert read_manifest(tmp_path).tiles_done == 1
