"""The house rules, read from the source: imports only run down the floors, and no circles.

FLOORS is the one list of floors; README.md's "Architecture" section says the same in words.
The imports are read with `ast`, nothing is imported, so the test is fast and cannot be fooled
by import order; imports inside functions count too (a lazy import still ties two modules).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "lmstack"

# Lowest first. A module may import from its own floor and the floors below it, never above.
# Each name is a sub-package or top-level module of lmstack ("lmstack" is the package's own
# __init__: `lmstack.load`). Names not yet in the tree are the floors' planned tenants.
FLOORS: list[set[str]] = [
    {"fileio"},                                      # atomic writes; leans on nothing
    {"nn", "chat", "foundations", "prompting"},      # building blocks; chat, prompting: no torch
    {"models", "tokenizer"},                         # architectures + registry; tokenizers
    {"lmstack", "data", "train", "adapt", "quant", "evals", "embed", "multimodal"},
    {"engine", "retrieve"},                          # inference; vector search
    {"rag", "agent"},                                # talk to a model only through chat/
    {"serve"},                                       # the OpenAI-compatible HTTP service
    {"apps"},                                        # the roadmap's showcase projects
    {"demo", "learn", "cli", "eval_cli", "__main__"},  # the command line, `lmstack demo`/`learn`
]
FLOOR_OF = {unit: level for level, units in enumerate(FLOORS) for unit in units}
# Importable without torch, so RAG and agents can run against a remote model (and prompting's
# templates, voting and JSON checks serve them too).
LIGHT = {"chat", "prompting", "agent"}


def module_name(path: Path) -> str:
    parts = ("lmstack", *path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def type_checking_only(tree: ast.Module) -> set[int]:
    """ids of import nodes under `if TYPE_CHECKING:`: annotations only, never run."""
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", "")
                                                ) == "TYPE_CHECKING":
            skip |= {id(n) for b in node.body for n in ast.walk(b)}
    return skip


def imports(module: str) -> list[tuple[str, int]]:
    """(imported name, line) for every import the module runs, module-level or not (a lazy
    import inside a function counts; one under `if TYPE_CHECKING:` never runs, so not)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = type_checking_only(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            # `from pkg import sub` imports the submodule pkg.sub, not pkg's __init__ names.
            found += [(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base,
                       node.lineno) for a in node.names]
    return found


def unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "lmstack"


def graph() -> dict[str, set[str]]:
    return {m: {t for t, _ in imports(m) if t in MODULES and t != m} for m in MODULES}


def test_every_package_is_on_a_floor():
    missing = sorted({unit(m) for m in MODULES} - FLOOR_OF.keys())
    assert not missing, (f"{missing} sit on no floor: add them to FLOORS in this test and to "
                         "the Architecture section of README.md")


def test_imports_only_run_down_the_floors():
    upward = []
    for module in sorted(MODULES):
        here = FLOOR_OF.get(unit(module))
        for target, line in imports(module):
            if target.startswith("lmstack") and here is not None:
                there = FLOOR_OF.get(unit(target))
                if there is not None and there > here:
                    upward.append(f"{MODULES[module].relative_to(ROOT.parent)}:{line} imports "
                                  f"{target} (floor {there} > {here})")
    assert not upward, "imports running up the floors:\n" + "\n".join(upward)


def test_the_light_packages_do_not_import_torch():
    heavy = [f"{m} imports {t}" for m in sorted(MODULES) if unit(m) in LIGHT
             for t, _ in imports(m) if t.split(".")[0] in {"torch", "numpy", "transformers"}
             or (t.startswith("lmstack") and unit(t) not in LIGHT | {"fileio"})]
    assert not heavy, heavy


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_cycle_finder_finds_a_planted_circle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(edges) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


# Circles the code has today, each with the work that removes it. Strict both ways: a new
# circle fails, and so does a listed one that is gone (delete its entry then).
KNOWN_CIRCLES: set[frozenset[str]] = set()  # none: keep it that way


def test_no_import_circles():
    found = {frozenset(c) for c in cycles(graph())}
    new = [" <-> ".join(sorted(c)) for c in found - KNOWN_CIRCLES]
    assert not new, "import circles (a lazy import counts):\n" + "\n".join(new)
    gone = [" <-> ".join(sorted(c)) for c in KNOWN_CIRCLES - found]
    assert not gone, "no longer circles; remove them from KNOWN_CIRCLES:\n" + "\n".join(gone)


def test_test_files_have_unique_basenames():
    # tests/ has no __init__.py files, so pytest imports each test file by its basename: two
    # files of the same name in different folders stop the whole run at collection.
    names = [p.name for p in (ROOT.parent / "tests").rglob("test_*.py")]
    twins = sorted({n for n in names if names.count(n) > 1})
    assert not twins, f"rename one of each: {twins}"
