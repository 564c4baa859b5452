"""The survey runtime never imports TensorFlow, directly or through a dependency."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import survey


def test_importing_every_survey_module_leaves_tensorflow_out():
    modules = sorted(m.name for m in pkgutil.walk_packages(survey.__path__, "survey."))
    assert len(modules) >= 8
    code = "import importlib, sys\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules)
    code += "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'tf2onnx'))\nprint(bad)\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"survey imported: {result.stdout}"
