"""The demo's text: the standard library's docstrings (present wherever Python is), or a
corpus from ../shared/data. Docstrings are read from source with `ast`, as pydoc does for
modules it must not import, so building the corpus imports nothing and runs no module code."""

from __future__ import annotations

import ast
import sysconfig
from pathlib import Path

SHARED_CORPORA = {
    "shakespeare": "pretrain/tinyshakespeare.txt",
    "tang_song_poems": "pretrain/tang_song_poems.txt",
}
# Folders of the standard library that are tests, tools or demos rather than library text.
SKIP = {"test", "tests", "idlelib", "tkinter", "turtledemo", "lib2to3", "pydoc_data",
        "ensurepip", "venv", "site-packages", "dist-packages", "__pycache__", "Tools"}
MIN_DOC_CHARS = 80  # shorter docstrings are mostly "Return x." lines that teach little


def stdlib_sources(root: Path | None = None) -> list[Path]:
    """The public .py files of the standard library, in a fixed (sorted) order."""
    root = root or Path(sysconfig.get_paths()["stdlib"])
    files = []
    for path in root.rglob("*.py"):
        parts = path.relative_to(root).parts
        if any(p in SKIP or p.startswith(("_", ".")) for p in parts):
            continue
        files.append(path)
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def docstrings(source: str) -> list[str]:
    """Module, class and function docstrings of one file, in source order, public names only."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):  # a file for another Python version; skip it
        return []
    out, nodes = [], [tree]
    while nodes:
        node = nodes.pop(0)
        doc = ast.get_docstring(node, clean=True)
        if doc and len(doc) >= MIN_DOC_CHARS:
            out.append(doc.strip())
        nodes[:0] = [child for child in ast.iter_child_nodes(node)
                     if isinstance(child, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                     and not child.name.startswith("_")]
    return out


def stdlib_corpus(max_chars: int = 2_000_000, root: Path | None = None) -> str:
    """Unique docstrings of the standard library, joined by blank lines, at most `max_chars`.

    The same bytes on every run of a given Python version: files in sorted order, no imports.
    """
    seen: set[str] = set()
    chunks, total = [], 0
    for path in stdlib_sources(root):
        try:
            source = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        for doc in docstrings(source):
            if doc not in seen:
                seen.add(doc)
                chunks.append(doc)
                total += len(doc) + 2
        if total >= max_chars:
            break
    return "\n\n".join(chunks)[:max_chars]


def find_shared_data() -> Path | None:
    """../shared/data beside the checkout, when present (tests, benchmarks, options)."""
    here = Path(__file__).resolve().parents[2]
    for cand in (here.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"):
        if cand.is_dir():
            return cand
    return None


def load_corpus(name: str, max_chars: int = 2_000_000) -> str:
    """'stdlib', a text file's path, or a name in SHARED_CORPORA."""
    if name == "stdlib":
        return stdlib_corpus(max_chars)
    path = Path(name)
    if not path.is_file():
        data = find_shared_data()
        if name not in SHARED_CORPORA:
            raise ValueError(
                f"unknown corpus {name!r}; use 'stdlib', a text file path, or one of "
                f"{', '.join(SHARED_CORPORA)} (needs ../shared/data)")
        if data is None:
            raise ValueError(f"corpus {name!r} needs ../shared/data beside the checkout; "
                             "use --corpus stdlib instead")
        path = data / SHARED_CORPORA[name]
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not UTF-8 text (byte {e.start}); convert it first") from e
