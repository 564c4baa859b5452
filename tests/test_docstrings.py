"""Every public function with three or more parameters documents them (STYLE.md section 5).

Walks ``survey/`` and ``training/`` with ``ast`` (nothing is imported, so the check is
cheap and needs neither TensorFlow nor Ray). For each public function or method (name not
starting with ``_``) at module or class level with at least three parameters, ``self``/``cls``
not counted and ``*args``/``**kwargs`` counted, the docstring must have a numpydoc
``Parameters`` section naming every parameter (a group ``ra_deg, dec_deg : array_like`` names
both; ``*args``/``**kwargs`` may be written with or without their stars) and a ``Returns`` or
``Yields`` section, unless the function is annotated ``-> None``.

A public class's ``__init__`` is its constructor and is checked too (no ``Returns`` needed);
numpydoc allows its ``Parameters`` in the class docstring or in ``__init__``'s own.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("survey", "training")
MIN_PARAMS = 3

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef
Owner = ast.ClassDef | None


def _public_functions(tree: ast.Module) -> Iterator[tuple[FunctionNode, Owner]]:
    """Module-level functions, and methods of public classes at module or class level, each with its class."""

    def walk(body: list[ast.stmt], owner: Owner) -> Iterator[tuple[FunctionNode, Owner]]:
        for node in body:
            if isinstance(node, FunctionNode):
                if not node.name.startswith("_") or (owner is not None and node.name == "__init__"):
                    yield node, owner
            elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                yield from walk(node.body, node)

    yield from walk(tree.body, None)


def _is_staticmethod(node: FunctionNode) -> bool:
    return any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in node.decorator_list)


def _parameter_names(node: FunctionNode, owner: Owner) -> list[str]:
    args = node.args
    positional = [a.arg for a in (*args.posonlyargs, *args.args)]
    if owner is not None and not _is_staticmethod(node) and positional and positional[0] in ("self", "cls"):
        positional = positional[1:]
    names = positional + [a.arg for a in args.kwonlyargs]
    if args.vararg is not None:
        names.append(args.vararg.arg)
    if args.kwarg is not None:
        names.append(args.kwarg.arg)
    return names


def _sections(docstring: str) -> dict[str, list[str]]:
    """Numpydoc sections: a title line followed by a line of dashes at least as long."""
    lines = docstring.splitlines()
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    i = 0
    while i < len(lines):
        title = lines[i].strip()
        underline = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if title and underline and set(underline) == {"-"} and len(underline) >= len(title):
            current = sections.setdefault(title, [])
            i += 2
            continue
        if current is not None:
            current.append(lines[i])
        i += 1
    return sections


def _documented_names(section: list[str]) -> set[str]:
    """Names on the ``name : type`` (or bare ``name``) lines at the section's own indentation."""
    entries = [line for line in section if line.strip()]
    if not entries:
        return set()
    indent = min(len(line) - len(line.lstrip()) for line in entries)
    names: set[str] = set()
    for line in entries:
        if len(line) - len(line.lstrip()) != indent:
            continue
        head = line.strip().split(" : ", 1)[0].rstrip(":").strip()
        names.update(name.strip().lstrip("*") for name in head.split(","))
    return names


def _returns_none(node: FunctionNode) -> bool:
    ret = node.returns
    return (isinstance(ret, ast.Constant) and ret.value is None) or (isinstance(ret, ast.Name) and ret.id == "None")


def _problems(node: FunctionNode, owner: Owner) -> list[str]:
    names = _parameter_names(node, owner)
    if len(names) < MIN_PARAMS:
        return []
    sections = _sections(ast.get_docstring(node) or "")
    is_constructor = owner is not None and node.name == "__init__"
    if is_constructor and "Parameters" not in sections:
        sections = _sections(ast.get_docstring(owner) or "")
    problems = []
    if "Parameters" not in sections:
        problems.append("no Parameters section")
    else:
        missing = [n for n in names if n not in _documented_names(sections["Parameters"])]
        if missing:
            problems.append("Parameters lacks " + ", ".join(missing))
    needs_returns = not is_constructor and not _returns_none(node)
    if needs_returns and "Returns" not in sections and "Yields" not in sections:
        problems.append("no Returns section")
    return problems


def offenders(root: Path) -> tuple[list[str], int]:
    """``path:line name: problems`` for every offender under ``root``, and how many functions were checked."""
    found: list[str] = []
    checked = 0
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node, owner in _public_functions(tree):
                if len(_parameter_names(node, owner)) < MIN_PARAMS:
                    continue
                checked += 1
                problems = _problems(node, owner)
                if problems:
                    found.append(f"{path.relative_to(root)}:{node.lineno} {node.name}: {'; '.join(problems)}")
    return found, checked


def test_public_functions_with_three_or_more_parameters_document_them() -> None:
    # The packages of the current directory when it has them, so the check can be pointed at another checkout.
    root = Path.cwd() if all((Path.cwd() / p).is_dir() for p in PACKAGES) else ROOT
    found, checked = offenders(root)
    assert checked > 0, f"no functions found under {root}"
    assert not found, f"{len(found)} of {checked} functions lack numpydoc Parameters/Returns:\n" + "\n".join(found)


def _parse(source: str) -> ast.stmt:
    return ast.parse(source).body[0]


def test_section_parser_reads_groups_and_stars() -> None:
    doc = (
        "Summary.\n\n    Parameters\n    ----------\n    ra_deg, dec_deg : array_like\n        ICRS degrees.\n"
        "    *args, **kwargs\n        Passed on.\n\n    Returns\n    -------\n    int\n        A count.\n    "
    )
    node = _parse(f"def f(ra_deg, dec_deg, *args, **kwargs) -> int:\n    '''{doc}'''\n")
    assert isinstance(node, ast.FunctionDef)
    assert _problems(node, None) == []
    cls = _parse("class C:\n    def g(self, a, b, c):\n        '''No sections.'''\n")
    assert isinstance(cls, ast.ClassDef)
    method = cls.body[0]
    assert isinstance(method, ast.FunctionDef)
    assert _parameter_names(method, cls) == ["a", "b", "c"]
    assert _problems(method, cls) == ["no Parameters section", "no Returns section"]


def test_constructor_parameters_may_live_in_the_class_docstring() -> None:
    cls = _parse(
        "class C:\n"
        "    '''Summary.\n\n    Parameters\n    ----------\n    a, b : int\n        Counts.\n    '''\n"
        "    def __init__(self, a, b, c):\n"
        "        pass\n"
    )
    assert isinstance(cls, ast.ClassDef)
    init = cls.body[1]
    assert isinstance(init, ast.FunctionDef)
    assert _problems(init, cls) == ["Parameters lacks c"]
