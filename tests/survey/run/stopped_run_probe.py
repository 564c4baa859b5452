"""Run a scan that crashes, keep its error, and print Ray's free CPUs: a fresh-process probe.

Before ``pipeline._release_stream``, a scan stopped by a crash on its last tile kept its
inference actor's CPU for as long as its error lived (3 of 3 probes: ``free_cpus=1.0``). In
the test module, after earlier streams, Ray freed it anyway, hence a fresh process:
``python -m tests.survey.run.stopped_run_probe MODEL OUTPUT STAGES`` prints ``free_cpus=N``.
"""

from __future__ import annotations

import gc
import os
import sys
from pathlib import Path

from survey.exceptions import HaloSurveyError
from survey.run.pipeline import run
from survey.run.plan import plan_scan
from tests.survey.run.helpers import FailingSource, survey_args
from tests.survey.survey_helpers import free_cpus_within, local_ray


def main(model: Path, output: Path, stages: str) -> None:
    gc.disable()  # as in a driver idling on its next stream: only the run's own release frees the actor
    ray_context = local_ray()
    next(ray_context)
    try:
        args = survey_args(model, output, stages=stages)
        crash = int(plan_scan(args).tiles[-1])
        try:
            run(args, source=FailingSource(crash_tile=crash))
        except HaloSurveyError as exc:
            kept = exc  # noqa: F841 - the caller keeps the error, as a notebook or a test would
        print(f"free_cpus={free_cpus_within(2, seconds=15)}", flush=True)
    finally:
        ray_context.close()


if __name__ == "__main__":
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    main(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
