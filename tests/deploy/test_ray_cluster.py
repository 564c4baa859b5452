"""A real multi-node Ray cluster of CPU-image containers, not ``ray.init()`` in one process.

A head and a worker run as separate containers on a podman network of their own (internal:
no route out), started with ``ray start --head`` and ``ray start --address=HEAD:6379`` as
the images' users would, and scans are submitted with ``ray job submit`` to the head's job
server (the path KubeRay's RayJob takes):

- a scan of 48 mock tiles finishes with its tiles spread over both nodes (Ray's record of
  the inference actors, and the manifest's ``nodes``: node IP -> tiles) and writes the same
  candidate catalogue, row for row, as a one-container run of the same region;
- the same scan with a second worker killed (SIGKILL to its container) while its inference
  actor is scoring: after ``--resume`` if the run stopped, every tile is written once and
  the catalogue is again the one-container run's, row for row.
"""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.deploy import podman
from tests.deploy.conftest import local_scan

pytestmark = [pytest.mark.containers, pytest.mark.slow]

REGION, TILES = "cone:339.6,-39.6,6", 48
"""The demo's cone widened to 6 deg: a run of about a minute here, long enough for every node's
inference actor to start (15-20 s on 2 cores) and score tiles, and for a worker to be killed
while it does. The demo's 18 tiles can be done before the worker's actor has started."""
DONE_MARKER = re.compile(r"^\d+_\d+_done$")
PROVENANCE_COLUMNS = ["run_id", "Norder", "Dir"]
"""Columns that name the run or come from the path, not from the sky: left out of comparisons."""


@dataclass
class Cluster:
    """Containers of one test cluster, and the host directory mounted at /work/out in each."""

    network: str
    head: str
    head_ip: str
    image: str
    out: Path
    workers: dict[str, str] = field(default_factory=dict)
    """container name -> IP address"""

    def node_options(self, name: str) -> list[str]:
        return ["--detach", "--no-healthcheck", "--name", name, "--hostname", name, "--network", self.network,
                "--shm-size", "1g", "-v", f"{self.out}:/work/out"]

    def start_worker(self, name: str) -> str:
        podman.podman("run", *self.node_options(name), self.image,
                      "ray", "start", "--block", f"--address={self.head_ip}:6379", "--num-cpus=1", "--disable-usage-stats")
        self.workers[name] = podman.container_ip(name, self.network)
        return self.workers[name]

    def exec(self, *args: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess:
        """Run a command in the head container."""
        return podman.podman("exec", self.head, *args, check=check, timeout=timeout)

    def alive_nodes(self) -> set[str]:
        code = ("import ray; ray.init(address='auto', logging_level='ERROR'); "
                "print(' '.join(n['NodeManagerAddress'] for n in ray.nodes() if n['Alive']))")
        done = self.exec("python", "-c", code, check=False, timeout=120)
        return set(done.stdout.split()) if done.returncode == 0 else set()

    def wait_for_nodes(self, expected: set[str], *, timeout_s: float = 180) -> None:
        deadline = time.monotonic() + timeout_s
        while (alive := self.alive_nodes()) != expected:
            if time.monotonic() > deadline:
                logs = podman.podman("logs", self.head, check=False)
                raise AssertionError(f"Ray nodes alive {sorted(alive)}, want {sorted(expected)}:\n{logs.stdout[-2000:]}{logs.stderr[-2000:]}")
            time.sleep(2)


@pytest.fixture(scope="module")
def cluster(cpu_image, tmp_path_factory):
    """A head (1 CPU) and a worker (1 CPU), each its own container, on an internal podman network."""
    suffix = secrets.token_hex(3)
    network, head = f"halo-ray-{suffix}", f"halo-ray-head-{suffix}"
    out = podman.writable_dir(tmp_path_factory.mktemp("ray-cluster") / "out")
    stale = [n for n in podman.podman("ps", "--all", "--format", "{{.Names}}").stdout.split() if n.startswith("halo-ray-")]
    if stale:  # left by an earlier session killed before its teardown: they would take the CPUs
        podman.podman("rm", "--force", "--time", "0", *stale)
    podman.podman("network", "create", "--internal", network)
    try:
        started = Cluster(network=network, head=head, head_ip="", image=cpu_image, out=out)
        podman.podman("run", *started.node_options(head), cpu_image,
                      "ray", "start", "--head", "--block", "--port=6379", "--num-cpus=1",
                      "--dashboard-host=0.0.0.0", "--disable-usage-stats")
        started.head_ip = podman.container_ip(head, network)
        started.start_worker(f"halo-ray-worker-{suffix}")
        started.wait_for_nodes({started.head_ip, *started.workers.values()})
        yield started
    finally:
        names = [n for n in podman.podman("ps", "--all", "--format", "{{.Names}}").stdout.split() if n.endswith(suffix)]
        if names:
            podman.podman("rm", "--force", "--time", "0", *names, check=False)
        podman.podman("network", "rm", "--force", network, check=False)


def _scan_command(region: str, output: str, *extra: str) -> list[str]:
    return ["halo-survey", "scan", "--region", region, "--address", "auto", "--output", output, "--no-progress", *extra]


def _submit(cluster: Cluster, region: str, output: str, *, wait: bool, submission_id: str) -> subprocess.CompletedProcess:
    """``ray job submit`` of the scan to the head's job server."""
    options = [] if wait else ["--no-wait"]
    return cluster.exec("ray", "job", "submit", "--address", "http://127.0.0.1:8265", "--submission-id", submission_id,
                        *options, "--", *_scan_command(region, output), check=False, timeout=900)


def _job_status(cluster: Cluster, submission_id: str) -> str:
    """PENDING, RUNNING, SUCCEEDED, FAILED or STOPPED, from the head's job server."""
    code = ("from ray.job_submission import JobSubmissionClient; "
            f"print(JobSubmissionClient('http://127.0.0.1:8265').get_job_status({submission_id!r}).value)")
    return cluster.exec("python", "-c", code, timeout=120).stdout.split()[-1]


def _wait_for_job(cluster: Cluster, submission_id: str, *, timeout_s: float) -> str:
    """The job's final status; a job still running after ``timeout_s`` is stopped, as a user would."""
    deadline = time.monotonic() + timeout_s
    while (status := _job_status(cluster, submission_id)) not in ("SUCCEEDED", "FAILED", "STOPPED"):
        if time.monotonic() > deadline:
            cluster.exec("ray", "job", "stop", "--address", "http://127.0.0.1:8265", submission_id, timeout=120)
            return _job_status(cluster, submission_id)
        time.sleep(2)
    return status


def _ray_list(cluster: Cluster, kind: str) -> list[dict]:
    """``ray list KIND`` (nodes, actors) from the head's state API, as dicts."""
    done = cluster.exec("ray", "list", kind, "--address", "http://127.0.0.1:8265", "--format", "json",
                        "--detail", "--limit", "1000")
    return json.loads(done.stdout)


def _scorer_nodes(cluster: Cluster, *, state: str | None = None) -> set[str]:
    """IP addresses of the nodes holding inference actors (TileScorer), in ``state`` if given."""
    ips = {node["node_id"]: node["node_ip"] for node in _ray_list(cluster, "nodes")}
    # An actor not yet placed (pending creation) has no node.
    return {ips[a["node_id"]] for a in _ray_list(cluster, "actors")
            if "TileScorer" in a["class_name"] and a.get("node_id") and state in (None, a["state"])}


def _candidates(run_dir: Path) -> pa.Table:
    """The candidate rows of a run, without what names the run, sorted by position."""
    table = pq.read_table(run_dir / "candidates" / "dataset")
    return table.drop_columns([c for c in PROVENANCE_COLUMNS if c in table.column_names]).sort_by("_healpix_29")


def _assert_same_rows(run_dir: Path, reference_dir: Path) -> None:
    got, want = _candidates(run_dir), _candidates(reference_dir)
    assert got.num_rows == want.num_rows, f"{got.num_rows} candidate rows, the local run has {want.num_rows}"
    different = [name for name in want.column_names if not got.column(name).equals(want.column(name))]
    assert not different, f"columns that differ from the local run: {different}"


def _done_markers(run_dir: Path) -> int:
    return sum(1 for path in run_dir.rglob("*_done") if DONE_MARKER.match(path.name))


def _manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


@pytest.fixture(scope="module")
def local_reference(cpu_image, tmp_path_factory) -> Path:
    """The local run of REGION (one container, its own Ray, no network) that cluster runs must match."""
    run_dir, done = local_scan(cpu_image, REGION, tmp_path_factory.mktemp("kill-reference") / "out", "reference")
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return run_dir


def test_scan_submitted_to_a_two_node_cluster_runs_tiles_on_both_nodes(cluster, local_reference):
    done = _submit(cluster, REGION, "/work/out/two-nodes", wait=True, submission_id=f"two-nodes-{secrets.token_hex(3)}")
    assert done.returncode == 0 and "succeeded" in done.stdout.lower(), (done.stdout + done.stderr)[-4000:]
    manifest = _manifest(cluster.out / "two-nodes")
    assert manifest["status"] == "complete" and manifest["tiles_done"] == TILES and not manifest["failed"]
    _assert_same_rows(cluster.out / "two-nodes", local_reference)
    scorers = _scorer_nodes(cluster)  # Ray's own record of where the inference actors ran
    assert scorers == {cluster.head_ip, *cluster.workers.values()}, scorers
    assert "nodes" in manifest, "manifest.json has no 'nodes' (node IP -> tiles finished there): survey/manifest.py must record it"
    nodes = manifest["nodes"]  # {node IP: sorted tile ids finished there}
    assert set(nodes) == {cluster.head_ip, *cluster.workers.values()}, nodes
    tiles = [tile for per_node in nodes.values() for tile in per_node]
    assert len(tiles) == len(set(tiles)) == TILES and all(per_node for per_node in nodes.values())


def test_killing_a_worker_container_mid_scan_still_writes_every_tile_once(cluster, local_reference):
    victim = f"halo-ray-victim-{cluster.network.rsplit('-', 1)[1]}"
    victim_ip = cluster.start_worker(victim)
    cluster.wait_for_nodes({cluster.head_ip, *cluster.workers.values()})
    run_dir, submission_id = cluster.out / "worker-killed", f"worker-killed-{secrets.token_hex(3)}"
    submitted = _submit(cluster, REGION, "/work/out/worker-killed", wait=False, submission_id=submission_id)
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr

    # Kill the worker once its inference actor is scoring and the run has written tiles.
    deadline = time.monotonic() + 300
    while not (victim_ip in _scorer_nodes(cluster, state="ALIVE") and _done_markers(run_dir) >= 1):
        assert time.monotonic() < deadline, f"no actor on the worker in 300 s; job {_job_status(cluster, submission_id)}"
        time.sleep(0.5)
    podman.podman("kill", "--signal", "KILL", victim)
    finished = _done_markers(run_dir)
    assert finished < TILES, f"the scan had finished ({finished} tiles) before the worker was killed"

    status = _wait_for_job(cluster, submission_id, timeout_s=300)
    if _manifest(run_dir)["status"] != "complete":
        resumed = cluster.exec(*_scan_command(REGION, "/work/out/worker-killed", "--resume"), check=False, timeout=900)
        assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-4000:]
    manifest = _manifest(run_dir)
    print(f"worker killed after {finished} of {TILES} tiles; the job ended {status}; "
          f"{manifest['tiles_done_before']} tiles kept, {manifest['tiles_done']} done by the last run")
    assert manifest["status"] == "complete" and not manifest["failed"]
    assert manifest["tiles_done_before"] + manifest["tiles_done"] == manifest["tiles_planned"] == TILES
    _assert_same_rows(run_dir, local_reference)
