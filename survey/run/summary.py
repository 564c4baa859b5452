"""What a run did, for people: the summary the CLI prints, and the mock sky's halos recovered."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from survey.images.base import ImageSource
from survey.run.arguments import SurveyArguments
from survey.run.finish import FinishResult
from survey.run.manifest import RunManifest
from survey.sky import healpix
from survey.sky.geometry import angular_distance_deg


@dataclass
class RunSummary:
    """What a run did, for the CLI's closing lines and for tests.

    Attributes
    ----------
    output : str
        The output directory.
    manifest : RunManifest
        The run's manifest (tiles, failures, timings, provenance).
    candidates : int
        Rows of the candidate catalogue.
    area_deg2 : float or None
        Sky area of a blind scan.
    providers : list of str
        ONNX Runtime providers the inference actors reported.
    mock_truth : tuple of int or None
        ``(injected, recovered, false)`` of a mock-sky run: halos inside the region, those
        with a candidate within ``recovery_radius_arcmin``, and candidates near no halo.
    recovery_radius_arcmin : float
        Two window spacings: a halo is recovered when the peak window lies that close.
    """

    output: str
    manifest: RunManifest
    candidates: int
    area_deg2: float | None
    providers: list[str]
    mock_truth: tuple[int, int, int] | None = None
    recovery_radius_arcmin: float = 0.0

    @property
    def windows_per_s(self) -> float:
        """Windows scored per second of streaming (reads, preprocessing and inference together)."""
        seconds = self.manifest.timings.get("pipeline", 0.0)
        return self.manifest.windows / seconds if seconds > 0 else 0.0

    @property
    def candidates_per_deg2(self) -> float | None:
        """Candidate density of a blind scan."""
        return self.candidates / self.area_deg2 if self.area_deg2 else None


def mock_recovery(source: ImageSource, args: SurveyArguments, result: FinishResult) -> tuple[tuple[int, int] | None, float]:
    """``(injected, recovered, false)`` of a mock-sky scan, and the radius used; None for real data.

    A candidate within the radius of an injected halo finds it; every other candidate is a
    false one (the mock sky holds no halos but the injected ones).

    Parameters
    ----------
    source : ImageSource
        The run's image source; only a synthetic one returns a truth table.
    args : SurveyArguments
        The run: its mode (targets give None), region and window order.
    result : FinishResult
        The candidates' positions.

    Returns
    -------
    counts : tuple of int or None
        Halos injected inside the region, those with a candidate within the radius, and
        the candidates near no injected halo; None for real images or a targets run.
    radius_arcmin : float
        Two window spacings (``resolution_arcmin`` of the window order), in arcmin.
    """
    radius = 2.0 * healpix.resolution_arcmin(args.window_order)
    truth = source.truth(args.region_spec) if args.mode == "scan" else None
    if truth is None:
        return None, radius
    recovered = 0
    near_a_halo = np.zeros(result.ra_deg.size, bool)
    for ra, dec in zip(np.asarray(truth["ra"], float), np.asarray(truth["dec"], float)):
        close = angular_distance_deg(result.ra_deg, result.dec_deg, ra, dec) * 60 <= radius
        recovered += bool(close.any())
        near_a_halo |= close
    return (len(truth), recovered, int(np.count_nonzero(~near_a_halo))), radius


def format_summary(summary: RunSummary) -> str:
    """The closing lines of ``halo-survey scan`` / ``targets``."""
    m = summary.manifest
    lines = []
    if m.provenance.get("source", "").startswith("mock"):
        lines.append(f"MOCK DATA: synthetic GLEAM-like sky ({m.provenance.get('source_description')}), not real observations")
    lines += [
        f"run           {m.run_id} ({m.mode}, status {m.status})",
        f"region        {m.provenance.get('region')}",
        f"model         {m.provenance.get('model_name')} on {', '.join(summary.providers) or 'no actor (nothing to do)'}",
        f"tiles         {m.tiles_done} done now, {m.tiles_done_before} done before, {len(m.failed)} failed, "
        f"{m.tiles_planned} planned",
        f"windows       {m.windows:,} in {m.timings.get('pipeline', 0.0):.1f} s ({summary.windows_per_s:,.1f} windows/s)",
        f"candidates    {summary.candidates}" + (
            f" ({summary.candidates_per_deg2:.3f} per deg2 over {summary.area_deg2:.1f} deg2)"
            if summary.candidates_per_deg2 is not None else ""),
    ]
    if m.mode == "targets":
        skipped = m.targets_skipped
        unreadable = skipped.get("unreadable_images", 0)
        lines.append(f"targets       not planned: {skipped.get('outside_region', 0):,} outside the region, "
                     f"{skipped.get('outside_images', 0):,} outside the images"
                     + (f", {unreadable:,} image set(s) unreadable (not scored)" if unreadable else ""))
    if summary.mock_truth is not None:
        injected, recovered, false = summary.mock_truth
        lines.append(f"mock halos    {recovered} of {injected} injected halos recovered "
                     f"(a candidate within {summary.recovery_radius_arcmin:.1f}')")
        rate = f" ({false / summary.area_deg2:.3f} per deg2)" if summary.area_deg2 else ""
        lines.append(f"false         {false} candidates near no injected halo{rate}")
    for problem in m.source_problems[:10]:
        lines.append(f"input problem {problem}")
    if len(m.source_problems) > 10:
        lines.append(f"input problem ... and {len(m.source_problems) - 10} more (see manifest.json)")
    for failure in m.failed[:10]:
        lines.append(f"failed        {failure.error}")
    if len(m.failed) > 10:
        lines.append(f"failed        ... and {len(m.failed) - 10} more (see manifest.json)")
    lines.append(f"output        {summary.output}")
    return "\n".join(lines)
