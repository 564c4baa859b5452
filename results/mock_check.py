"""The shipped classifier on the mock sky: the demo scan, a wide blind scan, and injected halos scored as targets.

    RAY_AUTH_MODE=disabled .venv/bin/python results/mock_check.py [--model PATH] [--out results/mock-check.md]

Three measurements, all through ``halo-survey`` itself (local Ray), on the deterministic mock
sky of ``survey.images.mock`` (seed 0):

1. **The demo** (``halo-survey scan``, no arguments but the model): the injected halos the
   scan recovers, and the candidates near no injected halo, in its 28 deg2.
2. **A wide blind scan** (a 10-degree cone, ~314 deg2): false candidates per deg2 over an
   area the demo is too small to measure, and the seeded halos in it.
3. **Injected halos as targets** (``halo-survey inject --source mock --grid ...``, then
   ``halo-survey targets --catalog <truth>``): the fraction of a flux x size grid scoring
   at or above the model card's threshold.

The mock sky is not GLEAM: its noise and source counts follow the data README's numbers,
its halos the halo model, so these say how the model behaves on the sky it was not
trained on, not how it does on real data (that is ``halo-train blind``'s job).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from survey.cli import main as halo_survey
from survey.defaults import DEFAULT_MODEL
from survey.model.modelcard import load_model_card

WIDE_REGION = "cone:339.6,-39.6,10"
GRID = "0.2,0.4,0.8,1.6:0.5,1,2,3"
GRID_REGION = "cone:60,-45,20"


def run(argv: list[str]) -> str:
    """``halo-survey ARGV``'s standard output; raises if it fails."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = halo_survey(argv)
    if code != 0:
        raise SystemExit(f"halo-survey {' '.join(argv)} exited {code}:\n{out.getvalue()}")
    return out.getvalue()


def summary_lines(text: str) -> list[str]:
    """The summary lines worth quoting (halos, false candidates, candidates, windows)."""
    keep = ("windows", "candidates", "mock halos", "false")
    return [line for line in text.splitlines() if line.startswith(keep)]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--out", type=Path, default=Path("results/mock-check.md"))
    p.add_argument("--per-cell", type=int, default=6, help="grid halos per flux x size cell")
    args = p.parse_args(argv)
    card = load_model_card(args.model)
    lines = [f"# The shipped classifier on the mock sky ({args.model.name}, threshold {card.threshold:.4f})", "",
             f"Command: `RAY_AUTH_MODE=disabled .venv/bin/python results/mock_check.py {' '.join(sys.argv[1:])}`", ""]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        common = ["--model", str(args.model), "--no-progress", "--match-catalogs", "psz2"]
        demo = run(["scan", "-o", str(tmp / "demo"), *common])
        lines += ["## 1. The demo scan (`make survey`)", "", "```", *summary_lines(demo), "```", ""]
        wide = run(["scan", "--region", WIDE_REGION, "-o", str(tmp / "wide"), *common])
        lines += [f"## 2. A wide blind scan ({WIDE_REGION})", "", "```", *summary_lines(wide), "```", ""]
        cells = len(GRID.split(":")[0].split(",")) * len(GRID.split(":")[1].split(","))
        run(["inject", "--source", "mock:0", "--grid", GRID, "--per-set", str(cells * args.per_cell),
             "--region", GRID_REGION, "--out", str(tmp / "injected"), "--seed", "1"])
        truth = tmp / "injected" / "injected_halos.ecsv"
        run(["targets", "--source", f"fits:{tmp / 'injected'}", "--catalog", str(truth), "--region", "allsky",
             "-o", str(tmp / "targets"), *common])
        from astropy.table import Table

        from survey.output.query import read_candidates

        frame = read_candidates(tmp / "targets" / "candidates")
        halos = Table.read(truth).to_pandas().set_index("name")
        frame = frame.join(halos[["flux_150mhz_jy", "r_e_arcmin"]], on="target_name")
        lines += [f"## 3. Injected mock halos scored as targets ({GRID}, {len(frame)} halos)", "",
                  f"Fraction scoring >= {card.threshold:.4f}:", "",
                  "| S(150 MHz) \\ r_e | " + " | ".join(f"{r:g}'" for r in sorted(set(frame["r_e_arcmin"]))) + " |",
                  "|---|" + "---|" * len(set(frame["r_e_arcmin"]))]
        for flux in sorted(set(frame["flux_150mhz_jy"])):
            row = []
            for r_e in sorted(set(frame["r_e_arcmin"])):
                cell = frame[(frame["flux_150mhz_jy"] == flux) & (frame["r_e_arcmin"] == r_e)]
                row.append(f"{int((cell['score'] >= card.threshold).sum())}/{len(cell)}")
            lines.append(f"| {flux:g} Jy | " + " | ".join(row) + " |")
        lines.append("")
        summary = {"demo": summary_lines(demo), "wide": summary_lines(wide),
                   "targets_median_score": float(np.median(frame["score"]))}
        lines += ["", f"<!-- {json.dumps(summary)} -->"]
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
