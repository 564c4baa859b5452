"""What a run asks of the Ray cluster, checked against what the cluster has before anything streams.

Ray Data waits for resources without a deadline: an inference actor that asks for a GPU on
a cluster without one, or a cluster with no CPU (``--num-cpus 0``), leaves the run waiting
forever with nothing on the screen. ``check_resources`` compares the request with the
nodes that are alive and refuses, in one line naming the option, what no node can run.
It does not refuse a request that only makes the run slower (more actors than CPUs: the
extra actors wait their turn).

- A Ray of this machine alone (the local Ray ``halo-survey`` starts) cannot grow: the
  refusal is immediate.
- A cluster of several nodes may be autoscaling (the deployments of ``deploy/`` start GPU
  workers only on demand): the missing resources are asked of the autoscaler
  (``ray.autoscaler.sdk.request_resources``, a no-op without one), and the run waits for
  them at most ``survey.config.conf.resource_wait`` seconds (10 minutes), saying so in one
  line, before it is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from survey.exceptions import HaloSurveyError, ResourceError
from survey.run.arguments import SurveyArguments
from survey.run.dataset import inference_resources, preprocess_memory_bytes

logger = logging.getLogger(__name__)

GIB = float(1 << 30)


def cluster_nodes() -> list[dict[str, float]]:
    """The resources (``CPU``, ``GPU``, ``memory`` bytes, ...) of each alive node of the running Ray."""
    import ray

    return [dict(node.get("Resources", {})) for node in ray.nodes() if node.get("Alive")]


def describe_cluster(nodes: Sequence[Mapping[str, float]]) -> str:
    """``2 node(s): 16 CPU, 1 GPU, 60.0 GiB memory`` (totals)."""
    total = {key: sum(float(n.get(key, 0.0)) for n in nodes) for key in ("CPU", "GPU", "memory")}
    return (f"{len(nodes)} node(s): {total['CPU']:g} CPU, {total['GPU']:g} GPU, "
            f"{total['memory'] / GIB:.1f} GiB memory")


def resource_problems(args: SurveyArguments, nodes: Sequence[Mapping[str, float]]) -> list[str]:
    """What no node of ``nodes`` can run, one line per problem naming the option and the fix; [] if all fits.

    Parameters
    ----------
    args : SurveyArguments
        The run: ``num_gpus``, ``providers``, the stage layout and the orders.
    nodes : sequence of mapping
        Each alive node's resources, as ``ray.nodes()`` reports them (``CPU``, ``GPU``,
        ``memory`` in bytes).

    Returns
    -------
    list of str
        Empty when at least one inference actor (and, with split stages, one reading task)
        fits on some node.
    """
    cluster = describe_cluster(nodes)
    problems = []
    cpus = max((float(n.get("CPU", 0.0)) for n in nodes), default=0.0)
    gpus = max((float(n.get("GPU", 0.0)) for n in nodes), default=0.0)
    memory = max((float(n.get("memory", 0.0)) for n in nodes), default=0.0)
    _, actor = inference_resources(args)
    if cpus < 1:
        problems.append(f"--num-cpus: the Ray cluster has no node with a CPU ({cluster}), so no tile can be read or "
                        "scored; give the local Ray at least 1 CPU (--num-cpus 1 or more, or leave it out), or "
                        "--address a cluster with CPUs")
    needed_gpus = float(actor.get("num_gpus", 0.0))
    if needed_gpus and gpus < needed_gpus:
        problems.append(f"--num-gpus {args.num_gpus:g}: no node of the Ray cluster has {args.num_gpus:g} GPU(s) "
                        f"({cluster}), so the inference actors would wait forever; pass --num-gpus 0 to score on "
                        "CPUs, or --address a cluster with GPU nodes")
    if args.providers == "cuda" and gpus == 0:
        problems.append(f"--providers cuda: the Ray cluster has no GPU ({cluster}); pass --providers auto or cpu, "
                        "or run on GPU nodes (--address, --num-gpus 1)")
    if not args.fused_stages and cpus >= 1:
        need = preprocess_memory_bytes(tile_order=args.tile_order, window_order=args.window_order)
        if memory and need > memory:
            problems.append(f"--stages split: each reading task reserves {need / GIB:.1f} GiB of memory but the "
                            f"largest node offers {memory / GIB:.1f} GiB ({cluster}); pass --stages fused, or a "
                            "larger --tile-order for smaller tiles, or use larger nodes")
    return problems


def _local() -> bool:
    """Whether the running Ray is this machine alone (then its onnxruntime is the workers')."""
    import ray

    alive = [n for n in ray.nodes() if n.get("Alive")]
    return len(alive) == 1 and alive[0].get("NodeID") == ray.get_runtime_context().get_node_id()


def run_bundles(args: SurveyArguments) -> list[dict[str, float]]:
    """What the run needs to start: one inference actor's resources, and with split stages one reading task's."""
    _, actor = inference_resources(args)
    bundles = [{"GPU": float(actor["num_gpus"])} if actor.get("num_gpus") else {"CPU": 1.0}]
    if not args.fused_stages:
        memory = preprocess_memory_bytes(tile_order=args.tile_order, window_order=args.window_order)
        bundles.append({"CPU": 1.0, "memory": float(memory)})
    return bundles


def wait_for_nodes(args: SurveyArguments, *, wait_s: float, poll_s: float = 5.0) -> list[str]:
    """Ask the autoscaler for what is missing and wait until the nodes fit the run; the problems left at the deadline.

    Parameters
    ----------
    args : SurveyArguments
        The run.
    wait_s : float
        Most seconds to wait.
    poll_s : float
        Seconds between two looks at the nodes.

    Returns
    -------
    list of str
        ``resource_problems`` of the last look: empty once the cluster fits the run.
    """
    import time

    from ray.autoscaler.sdk import request_resources

    problems = resource_problems(args, cluster_nodes())
    if not problems or wait_s <= 0:
        return problems
    bundles = run_bundles(args)
    logger.warning("the Ray cluster cannot run this yet (%s); asked its autoscaler for %s and waiting up to %g s",
                   problems[0].split(":")[0], bundles, wait_s)
    request_resources(bundles=bundles)
    deadline = time.monotonic() + wait_s
    try:
        while problems and time.monotonic() < deadline:
            time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
            problems = resource_problems(args, cluster_nodes())
    finally:
        request_resources(bundles=[])  # the run's own demand keeps the nodes from now on
    return [f"{p} (waited {wait_s:g} s for an autoscaler to add such a node)" for p in problems]


def check_resources(args: SurveyArguments) -> None:
    """Refuse a run that the running Ray cannot execute; nothing when Ray is not started yet.

    On this machine's Ray the refusal is immediate; on a cluster of several nodes the run
    first waits for an autoscaler (``wait_for_nodes``, ``conf.resource_wait`` seconds).
    When Ray is not initialised, Ray Data starts a local Ray on the first stream, so only
    the provider is checked, against this machine's onnxruntime.

    Raises
    ------
    ResourceError
        One line per problem (``resource_problems``), or ``--providers cuda`` with an
        onnxruntime that has no CUDA on a local Ray.
    """
    import ray

    from survey.config import conf

    if ray.is_initialized():
        nodes = cluster_nodes()
        local = _local()
        problems = resource_problems(args, nodes)
        if problems and not local:
            problems = wait_for_nodes(args, wait_s=float(conf.resource_wait))
    else:
        problems, local = [], True
    if args.providers == "cuda" and local:
        from survey.model.infer import requested_providers

        try:
            requested_providers("cuda")
        except HaloSurveyError as exc:
            problems.append(f"--providers cuda: {exc}")
    if problems:
        raise ResourceError("; ".join(problems))


def address_endpoint(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of a ``--address`` (``HOST:PORT`` or ``ray://HOST:PORT``), or None for ``auto`` and the like.

    >>> address_endpoint("ray://head.example:10001"), address_endpoint("10.0.0.5:6379"), address_endpoint("auto")
    (('head.example', 10001), ('10.0.0.5', 6379), None)
    """
    text = address.strip()
    if "://" in text:
        scheme, _, text = text.partition("://")
        if scheme != "ray":
            return None
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        return None
    return host, int(port)


def check_address(address: str, *, timeout_s: float) -> None:
    """Refuse an ``--address`` where nothing accepts a connection within ``timeout_s``.

    ``ray.init`` waits for an unreachable head for minutes, printing only its own retries;
    one TCP connection with a deadline tells a wrong address (or a cluster that is down)
    at once. Addresses without a port (``auto``) are left to Ray.

    Raises
    ------
    ResourceError
        Naming the address, what happened and the fix.
    """
    import socket

    endpoint = address_endpoint(address)
    if endpoint is None:
        return
    try:
        with socket.create_connection(endpoint, timeout=timeout_s):
            pass
    except TimeoutError:
        problem = f"nothing answered within {timeout_s:g} s"
    except OSError as exc:
        problem = exc.strerror or type(exc).__name__
    else:
        return
    raise ResourceError(
        f"--address {address}: no Ray cluster there ({problem}); check the head node's address and port "
        "(`ray status` on the head node prints it), or leave --address out to start a local Ray"
    )
