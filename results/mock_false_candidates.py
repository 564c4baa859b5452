"""What the mock demo's false candidates sit on: the mock sky's point sources near each.

    RAY_AUTH_MODE=disabled .venv/bin/python results/mock_false_candidates.py [--model PATH] [--out results/mock-false-candidates.md]

Runs the demo scan (``halo-survey scan``, mock sky seed 0, as ``make survey``), takes the
candidates farther than the summary's matching radius from every injected mock halo, and
lists the mock point sources within 6' of each from the sky's own catalogue
(``survey.images.mock.MockSky.point_sources``): flux density at 200 MHz and spectral index.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
from pathlib import Path

import numpy as np

from survey.cli import main as halo_survey
from survey.defaults import DEFAULT_MODEL
from survey.images.mock import MockSky
from survey.output.query import read_candidates
from survey.sky.geometry import angular_distance_deg

HALO_MATCH_ARCMIN = 6.9
"""A candidate this close to an injected halo is the halo (the demo summary's radius)."""

NEIGHBOUR_ARCMIN = 6.0


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--out", type=Path, default=Path("results/mock-false-candidates.md"))
    args = p.parse_args(argv)
    sky = MockSky(seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        with contextlib.redirect_stdout(io.StringIO()):
            code = halo_survey(["scan", "-o", tmp, "--model", str(args.model), "--no-progress", "--match-catalogs", "psz2"])
        if code != 0:
            raise SystemExit(f"the demo scan exited {code}")
        candidates = read_candidates(Path(tmp) / "candidates")
    halos = sky.truth()
    lines = ["# The mock demo's false candidates and the point sources under them", "",
             f"Command: `RAY_AUTH_MODE=disabled .venv/bin/python results/mock_false_candidates.py {' '.join(sys.argv[1:])}`"
             f" (model {args.model.name}).", "",
             "| candidate (ra, dec) | score | windows | point sources within 6' (distance, S_200MHz, alpha) | their total flux |",
             "|---|---|---|---|---|"]
    for _, row in candidates.sort_values("score", ascending=False).iterrows():
        ra, dec = float(row["ra"]), float(row["dec"])
        if np.any(angular_distance_deg(ra, dec, np.asarray(halos["ra"]), np.asarray(halos["dec"])) * 60 < HALO_MATCH_ARCMIN):
            continue
        sources = sky.point_sources(cells=sky.cells_near(ra_deg=ra, dec_deg=dec, radius_deg=0.3))
        distance = angular_distance_deg(ra, dec, sources.ra_deg, sources.dec_deg) * 60
        near = np.flatnonzero(distance < NEIGHBOUR_ARCMIN)
        near = near[np.argsort(distance[near])]
        listed = "; ".join(f"{distance[i]:.1f}', {sources.flux_jy[i]:.3f} Jy, {sources.spectral_index[i]:+.2f}" for i in near)
        lines.append(f"| {ra:.3f}, {dec:.3f} | {float(row['score']):.3f} | {int(row['n_windows'])} | {listed or 'none'} | "
                     f"{sources.flux_jy[near].sum():.3f} Jy |")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
