"""The package layers: each sub-package imports only the ones below it, so the tree stays the architecture.

sky <- images <- model <- run, and catalogs and output sit on sky alone; the top-level
helper modules (defaults, exceptions, config, remote) are below everything; cli is above
everything. A new import that points upward fails here with the module that made it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import survey

PACKAGE = Path(survey.__file__).parent
BASE = {"defaults", "exceptions", "config", "remote"}
ALLOWED = {
    "sky": BASE,
    "images": BASE | {"sky"},
    "model": BASE | {"sky", "images"},
    "catalogs": BASE | {"sky"},
    "output": BASE | {"sky"},
    "run": BASE | {"sky", "images", "model", "catalogs", "output"},
}


def layer_of(module: str) -> str | None:
    """``survey.sky.tiling`` -> ``sky``; ``survey.remote`` -> ``remote``; anything else None."""
    parts = module.split(".")
    return parts[1] if parts[0] == "survey" and len(parts) > 1 else None


def survey_imports(path: Path) -> set[str]:
    """The ``survey.*`` modules a file imports (``from survey import remote`` counts as ``survey.remote``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "survey":
            found |= {f"survey.{a.name}" for a in node.names} if node.module == "survey" else {node.module}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "survey"}
    return found


def test_every_sub_package_imports_only_the_layers_below_it():
    offenders = []
    for package, allowed in ALLOWED.items():
        for path in sorted((PACKAGE / package).rglob("*.py")):
            for module in survey_imports(path):
                layer = layer_of(module)
                if layer not in allowed | {package}:
                    offenders.append(f"{path.relative_to(PACKAGE.parent)} imports {module}")
    assert offenders == []


def test_the_base_modules_import_no_sub_package():
    offenders = [f"{name}.py imports {module}" for name in BASE for module in survey_imports(PACKAGE / f"{name}.py")
                 if layer_of(module) not in BASE]
    assert offenders == []
