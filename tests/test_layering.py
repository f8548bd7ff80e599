"""The map of docs/ARCHITECTURE.md holds in the code: no import cycle, and no room imports what it must not.

Imports are read from the source (module level and inside functions alike, TYPE_CHECKING blocks aside),
so a lazy import cannot hide a wrong dependency.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "vsr"


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):  # `if TYPE_CHECKING:` imports exist for annotations only
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            skip.update(id(n) for n in ast.walk(node))
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


GRAPH = {_module(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def _internal(name: str) -> set[str]:
    """The vsr modules `name` imports (a `from pkg import module` counts as importing the module)."""
    return {i for i in GRAPH[name] if i in GRAPH and i != name}


def test_no_import_cycle_among_top_level_imports() -> None:
    # Only module-level imports can deadlock an import; a cycle through a lazy import is still a smell,
    # so the whole graph is checked.
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(_internal(node)):
            if state.get(nxt) == 1 and not (node.startswith(nxt + ".") or nxt == "vsr"):
                pytest.fail(f"import cycle: {' → '.join([*path[path.index(nxt) :], nxt])}")
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])


RULES = {  # room: prefixes it must never import
    "vsr.media": ("torch", "tensorrt", "vsr.backends", "vsr.models", "vsr.pipeline", "vsr.api", "vsr.cli"),
    "vsr.models": ("vsr.media", "vsr.pipeline", "vsr.backends", "vsr.api", "vsr.cli"),
    "vsr.backends": ("vsr.media", "vsr.pipeline", "vsr.api", "vsr.cli"),
    "vsr.pipeline": ("vsr.api", "vsr.cli"),
    "vsr.train": ("vsr.pipeline", "vsr.api", "vsr.cli"),
    "vsr.api": ("vsr.cli",),
}


@pytest.mark.parametrize("room", sorted(RULES))
def test_rooms_import_only_what_they_may(room: str) -> None:
    for name, imports in GRAPH.items():
        if name == room or name.startswith(room + "."):
            wrong = sorted(i for i in imports if any(i == f or i.startswith(f + ".") for f in RULES[room]))
            assert not wrong, f"{name} imports {wrong}"


def test_the_cli_goes_through_the_public_api() -> None:
    # Commands render what vsr.api returns; the library's internals stay behind it. Allowed besides the
    # API: the CLI's own modules, the errors it maps, the benchmark behind `vsr bench`, and the training
    # extra's entry points (train, release).
    allowed = ("vsr.api", "vsr.cli", "vsr.errors", "vsr.bench", "vsr.train")
    for name, imports in GRAPH.items():
        if name.startswith("vsr.cli"):
            wrong = sorted(i for i in imports if i.startswith("vsr.") and not i.startswith(allowed))
            wrong = [w for w in wrong if w not in ("vsr.Progress", "vsr.JobResult", "vsr.FileOutcome")]
            assert not wrong, f"{name} reaches past the API: {wrong}"
