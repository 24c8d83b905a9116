"""models/ has no import circle, lazy imports inside functions included: model files register
themselves with registry.py, and hub.py finds classes there instead of importing them."""

from __future__ import annotations

import ast
from pathlib import Path

import lmstack.models

MODELS = Path(lmstack.models.__file__).parent


def _imports(path: Path) -> set[str]:
    """Sibling modules `path` imports anywhere, except under `if TYPE_CHECKING:`."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and getattr(node.test, "id", "") == "TYPE_CHECKING" for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and id(node) not in typing_only and node.module:
            if node.module == "lmstack.models":
                found |= {a.name for a in node.names if (MODELS / f"{a.name}.py").is_file()}
            elif node.module.startswith("lmstack.models."):
                found.add(node.module.split(".")[2])
    return found


def test_models_modules_import_without_a_circle():
    graph = {p.stem: _imports(p) for p in MODELS.glob("*.py") if p.stem != "__init__"}
    assert "hub" in graph["base"], "the check must see base.py's lazy import of hub"
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        for dep in sorted(graph.get(name, ())):
            assert dep not in path, f"import circle: {' -> '.join([*path, dep])}"
            if dep not in done:
                visit(dep, [*path, dep])
        done.add(name)

    for name in sorted(graph):
        visit(name, [name])
