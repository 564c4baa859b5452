"""hadolint on the Dockerfiles and shellcheck on the shell scripts, from their pip-installed binaries.

Each rule the Dockerfiles ignore is named in a ``# hadolint ignore=`` line and justified in
the comment just above it; each linter is also shown a broken file, so a linter that found
nothing would fail here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted((ROOT / "containers").glob("Dockerfile.*"))
SHELL_SCRIPTS = [ROOT / ".ci" / "run", *sorted((ROOT / "containers").rglob("*.sh"))]


def _tool(name: str) -> str:
    """The linter beside this Python (the venv's bin/, which make does not put on PATH), else on PATH."""
    beside = Path(sys.executable).parent / name
    path = str(beside) if beside.exists() else shutil.which(name)
    assert path, f"{name} not found: install the test tools (make test installs the deploy extra)"
    return path


def _hadolint(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run([_tool("hadolint"), "--no-color", "--failure-threshold", "error", *map(str, paths)],
                          capture_output=True, text=True)


def test_dockerfiles_pass_hadolint_at_the_error_threshold():
    done = _hadolint(*DOCKERFILES)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_every_ignored_hadolint_rule_is_justified_just_above(path):
    lines = path.read_text().splitlines()
    ignores = [(i, line.split("=", 1)[1].split(",")) for i, line in enumerate(lines) if line.startswith("# hadolint ignore=")]
    assert ignores, f"{path.name} ignores no rule: drop this test's parameter or the comment"
    for index, rules in ignores:
        comment = []
        for line in reversed(lines[:index]):  # the comment block right above the ignore line
            if not line.startswith("#"):
                break
            comment.append(line)
        said = " ".join(comment)
        for rule in rules:
            assert re.search(rf"\b{rule}\b", said), f"{path.name}:{index + 1}: ignored {rule} is not explained above it"


def test_hadolint_rejects_a_broken_dockerfile(tmp_path):
    broken = tmp_path / "Dockerfile"
    broken.write_text("FROM debian:bookworm-slim\nWORKDIR relative/path\nRUN sudo apt-get update\n")
    done = _hadolint(broken)
    assert done.returncode == 1 and "DL3000" in done.stdout and "DL3004" in done.stdout, done.stdout


def test_shell_scripts_pass_shellcheck():
    done = subprocess.run([_tool("shellcheck"), *map(str, SHELL_SCRIPTS)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_shellcheck_rejects_a_broken_script(tmp_path):
    broken = tmp_path / "broken.sh"
    broken.write_text("#!/bin/sh\ncd $1\nrm -rf $2/*\n")
    done = subprocess.run([_tool("shellcheck"), str(broken)], capture_output=True, text=True)
    assert done.returncode == 1 and "SC2086" in done.stdout, done.stdout
