"""The layers of the code: each package imports only the layers below it that it names.

The data flows model -> render -> {components, nslab, vmlab} -> drills, on plumbing. A package
sits on a floor and may import only packages on lower floors, and of those only the ones its
rule names; packages on one floor are wings and never import each other (the namespace lab
never imports the lab of VMs, the machine never imports a lab). Every import counts, also one
inside a function. Each package's ``__init__.py`` says what it owns and, on a line of its own,
what it may import; the rule below and that line must agree.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

#: Bottom first. ``entry`` is ``python -m halab`` (halab/cli.py, up.py, __main__.py); ``program``
#: is Pulumi's program (the repository's __main__.py), where Pulumi's conventions put it.
FLOORS: tuple[tuple[str, ...], ...] = (
    ("plumbing",),
    ("model",),
    ("render", "target", "machine", "fortigate"),
    ("components", "nslab", "vmlab"),
    ("drills",),
    ("bench", "e2e"),
    ("entry", "program"),
)

BASE = frozenset({"plumbing", "model"})

#: What each layer may import (besides itself).
MAY_IMPORT: dict[str, frozenset[str]] = {
    "plumbing": frozenset(),
    "model": frozenset({"plumbing"}),
    "render": BASE,
    "target": BASE,
    "machine": BASE,
    "fortigate": BASE,
    "components": BASE | {"render"},
    "nslab": BASE | {"render", "target", "fortigate"},
    "vmlab": BASE | {"target", "machine"},
    "drills": BASE | {"target"},
    "bench": BASE | {"render", "target", "nslab", "drills"},
    "e2e": BASE | {"target", "machine", "vmlab", "drills", "fortigate"},
    "entry": frozenset(
        {"plumbing", "model", "render", "target", "machine", "fortigate", "nslab", "vmlab"}
        | {"drills", "bench", "e2e"}
    ),
    "program": frozenset({"model", "render", "components"}),
}

#: The modules of ``python -m halab``: the top, above every package.
ENTRY_MODULES = frozenset({"halab.cli", "halab.up", "halab.__main__"})

#: Run by Debian's python3 before the virtualenv exists (Makefile, scripts/, .ci/run), so they,
#: and every module of halab they import, use the standard library only.
BEFORE_THE_VENV = (
    "halab.plumbing.hostdeps",
    "halab.machine.engine",
    "halab.machine.fresh",
)


def floor_of(layer: str) -> int:
    """The floor a layer stands on."""
    return next(i for i, floor in enumerate(FLOORS) if layer in floor)


def module_name(path: Path) -> str:
    """``halab/nslab/lab.py`` -> ``halab.nslab.lab``; a package is its ``__init__``'s name."""
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts) or "__main__"


def layer_of(module: str) -> str | None:
    """The layer a module of the project belongs to; None for what is not the project's."""
    if module == "__main__":
        return "program"
    if module in ENTRY_MODULES:
        return "entry"
    head, _, rest = module.partition(".")
    if head == "components":
        return "components"
    if head == "halab" and rest:
        return rest.split(".")[0]
    return None


@dataclass(frozen=True)
class Import:
    """One import of a project module: where it stands and what it names."""

    line: int
    module: str


def project_imports(source: str, module: str, *, is_package: bool = False) -> list[Import]:
    """Every import of a ``halab`` or ``components`` module in ``source``, at any depth
    (function-level imports too), relative ones resolved; ``from P import m`` names P.m when m
    is a module of package P."""
    found: list[Import] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [Import(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, *([node.module] if node.module else [])])
            for alias in node.names:
                # ``from halab import lab`` or ``from halab.plumbing import procs``: the module.
                sub = f"{base}.{alias.name}"
                named = sub if layer_of(base) is None or _is_module(sub) else base
                found.append(Import(node.lineno, named))
    return [i for i in found if i.module.split(".")[0] in ("halab", "components")]


def _is_module(name: str) -> bool:
    path = REPO.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def violations(path: Path, source: str) -> list[str]:
    """Each import in ``source`` (the file at ``path``) that its layer's rule forbids."""
    module = module_name(path)
    layer = layer_of(module)
    if layer is None:  # halab/__init__.py: no layer, and nothing to import (below)
        return []
    problems = []
    for imp in project_imports(source, module, is_package=path.name == "__init__.py"):
        target = layer_of(imp.module)
        if target is None or target == layer:
            if target is None and imp.module != "halab":
                problems.append(f"{path.relative_to(REPO)}:{imp.line}: {imp.module}: no layer")
            continue
        if target not in MAY_IMPORT[layer]:
            where = "above it" if floor_of(target) > floor_of(layer) else "beside or below it"
            if floor_of(target) == floor_of(layer):
                where = "a wing beside it"
            problems.append(
                f"{path.relative_to(REPO)}:{imp.line}: {layer} imports {imp.module} "
                f"({target}, {where}); {layer} may import: {', '.join(sorted(MAY_IMPORT[layer]))}"
            )
    return problems


def project_files() -> list[Path]:
    """Every module of the project's code: halab/, components/ and Pulumi's program."""
    return [
        REPO / "__main__.py",
        *sorted((REPO / "components").rglob("*.py")),
        *sorted((REPO / "halab").rglob("*.py")),
    ]


def test_the_rules_point_down_the_floors() -> None:
    """A rule that allowed a layer above, or a wing on the same floor, would be no layering."""
    assert set(MAY_IMPORT) == {layer for floor in FLOORS for layer in floor}
    for layer, allowed in MAY_IMPORT.items():
        for other in allowed:
            assert floor_of(other) < floor_of(layer), f"{layer} may import {other}"


def test_every_module_belongs_to_a_layer() -> None:
    """No module of halab outside a layer: a new one goes into the package it belongs to."""
    homeless = [
        str(path.relative_to(REPO))
        for path in project_files()
        if layer_of(module_name(path)) not in MAY_IMPORT and path != REPO / "halab/__init__.py"
    ]
    assert not homeless
    # halab/__init__.py runs first for every ``python3 -m halab.X``: it imports nothing.
    tree = ast.parse((REPO / "halab/__init__.py").read_text())
    assert all(isinstance(node, ast.Expr) for node in tree.body), (
        "halab/__init__.py: docstring only"
    )


def test_every_import_follows_the_layers() -> None:
    """No import from a layer above, and none across wings; function-level imports included."""
    problems = [p for path in project_files() for p in violations(path, path.read_text())]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    ("where", "code"),
    [
        ("halab/nslab/x.py", "from halab.vmlab.lab import VmLab"),  # across wings
        ("halab/machine/x.py", "def f():\n    from halab.nslab import lab\n"),  # a layer above
        (
            "halab/drills/x.py",
            "from halab.nslab.lab import NamespaceLab",
        ),  # a lab, not the protocol
        ("halab/model/x.py", "from ..render import hosts"),  # relative, to the floor above
        ("halab/vmlab/x.py", "import halab.drills.core"),  # the labs never import the drills
        ("halab/plumbing/x.py", "from halab.model import spec"),  # plumbing imports nothing
        ("components/x.py", "from halab.nslab.lab import NamespaceLab"),  # a wing beside it
    ],
)
def test_the_rule_refuses(where: str, code: str) -> None:
    """The check itself: each of these imports is one it must report."""
    assert violations(REPO / where, code)


def test_the_rule_accepts_an_import_from_below() -> None:
    """And it lets through what the rule names."""
    assert not violations(REPO / "halab/nslab/x.py", "from halab.target import protocol")
    assert not violations(REPO / "halab/drills/x.py", "from ..target.probe import Sample")


PACKAGES = sorted(layer for layer in MAY_IMPORT if layer not in ("entry", "program"))


@pytest.mark.parametrize("layer", PACKAGES)
def test_each_package_says_what_it_owns_and_may_import(layer: str) -> None:
    """The ``May import:`` line of the package's docstring is its rule."""
    init = REPO / ("components" if layer == "components" else f"halab/{layer}") / "__init__.py"
    doc = ast.get_docstring(ast.parse(init.read_text())) or ""
    assert "Owns" in doc or "owns" in doc, f"{init}: say what it owns"
    assert "May import:" in doc, f"{init}: say what it may import"
    said = " ".join(doc.split("May import:", 1)[1].split("\n\n")[0].split())
    words = (word.rstrip(".,") for word in said.split())
    named = {word.removeprefix("halab.") for word in words if word.startswith("halab.")}
    assert named == set(MAY_IMPORT[layer]), f"{init}: {said!r}"


def _halab_imports_of(module: str) -> set[str]:
    path = REPO.joinpath(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names |= {
                f"{node.module}.{a.name}"
                for a in node.names
                if _is_module(f"{node.module}.{a.name}")
            }
    return names


@pytest.mark.parametrize("entry", BEFORE_THE_VENV)
def test_what_runs_before_the_venv_uses_the_standard_library_only(entry: str) -> None:
    """``python3 -m`` of these runs on Debian's python3, with no package of the virtualenv."""
    seen: set[str] = set()
    todo = [entry]
    foreign: list[str] = []
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        # Importing a module imports its packages' __init__ first.
        parts = module.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        for name in _halab_imports_of(module):
            top = name.split(".")[0]
            if top == "halab":
                todo.append(name)
            elif top not in sys.stdlib_module_names and top != "__future__":
                foreign.append(f"{module} imports {name}")
    assert not foreign, foreign
