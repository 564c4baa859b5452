"""The install footprint: ``make survey`` installs the survey runtime only, ``make test`` adds the rest.

Read from ``make -n`` (what make would run), so nothing is installed here; the sizes and
times of both steps are measured in README.md ("Install footprint").
"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRAINING_ONLY = re.compile(r"tensorflow|keras|tf2onnx", re.IGNORECASE)


def _dry_run(target: str, tmp_path: Path) -> list[str]:
    """The commands ``make -n TARGET`` prints for a venv that does not exist yet."""
    # Run from `make test`, make's own variables would reach this make and change what it prints.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    done = subprocess.run(["make", "--no-print-directory", "-n", target, f"VENV={tmp_path / 'venv'}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return done.stdout.splitlines()


def _installed_extras(commands: list[str]) -> list[set[str]]:
    """Extras of each ``pip install ... -e '.[...]'`` of the project, in order."""
    return [set(m.group(1).split(",")) for c in commands if (m := re.search(r"pip install .*-e '\.\[([\w,-]+)\]'", c))]


def _optional(extra: str) -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"][extra]


def test_make_survey_installs_the_survey_runtime_without_tensorflow(tmp_path):
    commands = _dry_run("survey", tmp_path)
    assert _installed_extras(commands) == [{"cpu"}]
    assert all("-c constraints.txt" in c for c in commands if "pip install" in c and "--upgrade pip" not in c)
    assert any(c.endswith("halo-survey scan --overwrite") for c in commands)
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [d for d in dependencies + _optional("cpu") if TRAINING_ONLY.search(d)]


def test_make_test_adds_training_and_the_test_tools_to_the_same_venv(tmp_path):
    commands = _dry_run("test", tmp_path)
    survey, full = _installed_extras(commands)
    assert survey == {"cpu"} and full == {"cpu", "train", "tf-cpu", "test", "deploy"}
    venv_python = f"{tmp_path / 'venv'}/bin/python"
    assert len([c for c in commands if "-m venv" in c]) == 1
    assert all(c.startswith(venv_python) for c in commands if "pip install" in c)  # one venv for both
    assert commands[-1].endswith("-m pytest -q")
    assert any(TRAINING_ONLY.search(d) for d in _optional("tf-cpu") + _optional("train"))


@pytest.mark.parametrize("extra", ["deploy", "test"])
def test_test_tools_are_pinned_in_the_constraints(extra):
    pinned = {line.split("==")[0].lower().replace("_", "-") for line in (ROOT / "constraints.txt").read_text().splitlines()
              if "==" in line and not line.startswith("#")}
    names = {re.split(r"[<>=\[ ]", requirement)[0].lower().replace("_", "-") for requirement in _optional(extra)}
    assert names <= pinned, names - pinned
