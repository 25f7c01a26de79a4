"""The package's import graph (issue 19): no circle, and no module takes another's
private names. Read from the source with ``ast``, never by importing: an import inside a
function counts as much as one at the top; one under ``if TYPE_CHECKING:`` does not (it
never runs)."""
from __future__ import annotations

import ast
import functools
import pathlib

import axisdot

PACKAGE = pathlib.Path(axisdot.__file__).parent



def _modules() -> dict[str, tuple[pathlib.Path, bool]]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


MODULES = _modules()


def _type_checking_only(tree: ast.AST) -> set[int]:
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for child in node.body for n in ast.walk(child)}
    return skipped


@functools.lru_cache(maxsize=None)
def _imports(name: str) -> list[tuple[str, str]]:
    """``(module imported, name taken from it or "")`` for each import that runs."""
    path, is_package = MODULES[name]
    package = name if is_package else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    skipped = _type_checking_only(tree)
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found += [(a.name, "") for a in node.names if a.name in MODULES]
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join(parts[:len(parts) - node.level + 1] + [node.module or ""]).rstrip(".") if node.level \
                else node.module or ""
            for alias in node.names:
                if f"{base}.{alias.name}" in MODULES:
                    found.append((f"{base}.{alias.name}", ""))
                elif base in MODULES:
                    found.append((base, alias.name))
    return found


def _graph() -> dict[str, set[str]]:
    return {name: {target for target, _ in _imports(name)} - {name} for name in MODULES}


def _circle(graph: dict[str, set[str]]) -> list[str]:
    """One circle of imports, or [] (a depth-first search)."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_the_package_s_import_graph_has_no_circle():
    assert _circle(_graph()) == []


def test_the_circle_check_finds_a_circle():
    graph = _graph()
    graph["axisdot.errors"] = graph["axisdot.errors"] | {"axisdot.layers.einsum_dense"}
    circle = _circle(graph)
    assert circle[0] == circle[-1] and "axisdot.errors" in circle and "axisdot.layers.einsum_dense" in circle


def test_explanation_and_layer_explanation_import_one_way():
    graph = _graph()
    assert "axisdot.explanation" in graph["axisdot.layer_explanation"]
    assert not any(target.startswith(("axisdot.layer_explanation", "axisdot.layers"))
                   for target in graph["axisdot.explanation"])
    assert not any(target.startswith("axisdot.layers") for target in graph["axisdot.layer_explanation"])


def _private_reaches(name: str) -> set[str]:
    """The private names of other axisdot modules that ``name`` imports or reads as
    attributes of a module it imported (``from .x import _y``, ``x._y``)."""
    reaches = {f"{target}.{taken}" for target, taken in _imports(name)
               if taken.startswith("_") and not taken.startswith("__") and target != name}
    path, _ = MODULES[name]
    tree = ast.parse(path.read_text())
    bound = {}  # local name -> the axisdot module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                local = alias.asname or alias.name.split(".")[0]
                for target, taken in _imports(name):
                    if not taken and target.endswith("." + alias.name) or target == alias.name:
                        bound[local] = target
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound \
                and node.attr.startswith("_") and not node.attr.startswith("__"):
            reaches.add(f"{bound[node.value.id]}.{node.attr}")
    return reaches


def test_no_module_reaches_into_another_s_private_names():
    reaches = {(name, reach) for name in MODULES for reach in _private_reaches(name)}
    assert reaches == set()


def test_the_check_sees_a_reach_where_there_is_one(tmp_path, monkeypatch):
    fake = tmp_path / "fake.py"
    fake.write_text("from axisdot.spec import _hidden\nfrom axisdot.testing import strategies\nstrategies._drawn\n")
    monkeypatch.setitem(MODULES, "axisdot.fake", (fake, False))
    assert _private_reaches("axisdot.fake") == {"axisdot.spec._hidden", "axisdot.testing.strategies._drawn"}
