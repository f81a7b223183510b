"""The structure rules of docs/architecture.md, checked on the source (no app is built).

* ``survey_app`` imports ``analysis`` and ``improvement`` only inside ``create_app``;
  ``analysis`` never imports ``improvement``;
* no module imports a view module (``routes.py``) of another package;
* no two modules import each other, directly or round a longer loop, when imported
  (imports inside functions, which run later, are how an ``init_app`` connects a
  package without a loop, and are left out);
* no product module is longer than 500 lines.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("survey_app", "analysis", "improvement")
MAX_LINES = 500
#: What each package may import: the packages to its left.
ALLOWED = {
    "survey_app": {"survey_app"},
    "analysis": {"survey_app", "analysis"},
    "improvement": {"survey_app", "analysis", "improvement"},
}


@dataclass(frozen=True)
class Import:
    """One import statement's target module, where it stands, and whether it runs when the
    importing module is loaded (module level, outside ``if TYPE_CHECKING``)."""

    target: str
    line: int
    at_load: bool
    function: str | None


def _module_files() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


MODULES = _module_files()


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _resolve(module: str, level: int, name: str | None) -> str:
    if not level:
        return name or ""
    base = module.split(".")
    if not _is_package(module):
        base.pop()
    base = base[: len(base) - (level - 1)]
    return ".".join([*base, name] if name else base)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(module: str) -> Iterator[Import]:
    """Every module ``module`` imports: ``from x import name`` counts as importing ``x.name``
    when that is a module of ours, else ``x``."""

    def visit(node: ast.AST, at_load: bool, function: str | None) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                yield from visit(child, False, function or child.name)
            elif isinstance(child, ast.If) and _is_type_checking(child):
                yield from visit(child, False, function)
            elif isinstance(child, ast.Import):
                for alias in child.names:
                    yield Import(alias.name, child.lineno, at_load, function)
            elif isinstance(child, ast.ImportFrom):
                target = _resolve(module, child.level, child.module)
                for alias in child.names:
                    submodule = f"{target}.{alias.name}"
                    found = submodule if submodule in MODULES else target
                    yield Import(found, child.lineno, at_load, function)
            else:
                yield from visit(child, at_load, function)

    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    yield from visit(tree, True, None)


def _package(module: str) -> str:
    return module.split(".")[0]


def _feature(module: str) -> str:
    """The feature a module belongs to: ``analysis.targets`` for ``analysis.targets.routes``
    and for ``analysis.targets`` itself; a top-level module (``survey_app.cli``) is its own."""
    return ".".join(module.split(".")[:2])


def test_imports_point_one_way() -> None:
    wrong = []
    for module in MODULES:
        for imported in imports_of(module):
            target = _package(imported.target)
            if target not in PACKAGES or target in ALLOWED[_package(module)]:
                continue
            if module == "survey_app" and imported.function == "create_app":
                continue
            wrong.append(f"{module}:{imported.line} imports {imported.target}")
    assert wrong == []


def test_no_module_imports_another_packages_view_module() -> None:
    wrong = [
        f"{module}:{imported.line} imports {imported.target}"
        for module in MODULES
        for imported in imports_of(module)
        if imported.target.endswith(".routes")
        and imported.target in MODULES
        and _feature(imported.target) != _feature(module)
    ]
    assert wrong == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def test_the_cycle_finder_finds_a_loop() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_between_modules() -> None:
    graph = {
        module: {
            imported.target
            for imported in imports_of(module)
            if imported.at_load and imported.target in MODULES and imported.target != module
        }
        for module in MODULES
    }
    assert _cycles(graph) == []


def test_no_product_module_is_longer_than_500_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): lines
        for path in MODULES.values()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}
