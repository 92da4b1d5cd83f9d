"""The kernel's fence: ``gofer._core`` is reached through its face only, the
package's imports form no cycle, and no module outgrows 450 lines.

The modules are read with ``ast``, not imported: every import counts, those
inside functions (lazy ones) too; only ``if TYPE_CHECKING:`` blocks are
skipped, as they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import gofer

PKG = Path(gofer.__file__).resolve().parent
MAX_LINES = 450


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The gofer modules that module ``name`` imports (lazily or not)."""
    tree = ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            # ``from gofer import _x`` imports the module gofer._x.
            found.update(f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in modules)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {m for m in found if m in modules and m != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def test_kernel_is_reached_through_its_face_only() -> None:
    bad = sorted(
        f"{mod} imports {dep}"
        for mod, deps in _graph().items()
        if not mod.startswith("gofer._core")
        for dep in deps
        if dep.startswith("gofer._core.")
    )
    assert not bad, "import gofer._core, not its modules:\n  " + "\n  ".join(bad)


def test_kernel_imports_nothing_above_it() -> None:
    bad = sorted(
        f"{mod} imports {dep}"
        for mod, deps in _graph().items()
        if mod.startswith("gofer._core")
        for dep in deps
        if not dep.startswith("gofer._core")
    )
    assert not bad, "the kernel must not import the rest of gofer:\n  " + "\n  ".join(bad)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    comps: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return comps


def _package_parents(name: str) -> set[str]:
    # Importing gofer.x.y runs gofer/__init__ and gofer/x/__init__ first: those
    # edges are not circles of the module's own making.
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def test_no_import_cycles() -> None:
    graph = {m: {d for d in deps if d not in _package_parents(m)} for m, deps in _graph().items()}
    found = _cycles(graph)
    assert not found, "import circles (each line: modules importing each other in a ring):\n  " + "\n  ".join(
        " <-> ".join(c) for c in found
    )


def test_modules_stay_small() -> None:
    big = sorted(
        f"{name}: {n} lines"
        for name, path in _modules().items()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    )
    assert not big, f"modules over {MAX_LINES} lines (split them by purpose):\n  " + "\n  ".join(big)


def test_the_benchmarks_stay_out_of_the_package() -> None:
    # They live in the checkout's bench/ (python -m bench); a wheel has none.
    assert not any((PKG / "bench").rglob("*.py"))
    importers = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            )
            if any(m == "bench" or m.startswith("bench.") for m in mods):
                importers.append(name)
    assert not importers, f"modules of gofer import the benchmarks: {sorted(set(importers))}"
