"""`lmstack demo`: the roadmap end to end on one laptop, writing a report with plots.

Each capability adds a stage: a function that takes the shared `DemoRun` (output folder,
corpus, console, report sections) and leaves its artifacts and a report section behind.
Default data is text every Python install carries (the standard library's docstrings), so
the demo needs nothing but the repo.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from lmstack.fileio import atomic_write_text

SHARED_CORPORA = {
    "shakespeare": "pretrain/tinyshakespeare.txt",
    "tang_song_poems": "pretrain/tang_song_poems.txt",
}


def stdlib_corpus(max_chars: int = 2_000_000) -> str:
    """Docstrings of the standard library's public modules, classes and functions (≈1.5 MB).

    Deterministic for a given Python version, and present wherever Python is.
    """
    import sys

    names = sorted(m.name for m in pkgutil.iter_modules() if m.module_finder.path.startswith(
        sys.base_prefix) and not m.name.startswith("_") and "site-packages" not in
        m.module_finder.path)
    skip = {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "lib2to3",
            "pydoc_data", "ensurepip", "venv", "test", "xxlimited", "xxsubtype"}
    chunks, total = [], 0
    for name in names:
        if name in skip:
            continue
        try:
            module = importlib.import_module(name)
        except Exception:  # noqa: BLE001, S112 - optional modules missing or failing on some builds
            continue
        for obj in [module, *(v for _, v in inspect.getmembers(module))]:
            doc = inspect.getdoc(obj) if inspect.ismodule(obj) or inspect.isclass(obj) or \
                inspect.isroutine(obj) else None
            if doc and len(doc) > 80:
                chunks.append(doc.strip())
                total += len(doc)
        if total >= max_chars:
            break
    seen: set[str] = set()
    unique = [c for c in chunks if not (c in seen or seen.add(c))]
    return "\n\n".join(unique)[:max_chars]


def find_shared_data() -> Path | None:
    """../shared/data beside the checkout, when present (tests, benchmarks, options)."""
    here = Path(__file__).resolve().parents[1]
    for cand in (here.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"):
        if cand.is_dir():
            return cand
    return None


def load_corpus(name: str) -> str:
    if name == "stdlib":
        return stdlib_corpus()
    path = Path(name)
    if not path.is_file():
        data = find_shared_data()
        if name not in SHARED_CORPORA:
            raise ValueError(
                f"unknown corpus {name!r}; use 'stdlib', a text file path, or one of "
                f"{', '.join(SHARED_CORPORA)} (needs ../shared/data)"
            )
        if data is None:
            raise ValueError(f"corpus {name!r} needs ../shared/data beside the checkout; "
                             "use --corpus stdlib instead")
        path = data / SHARED_CORPORA[name]
    return path.read_text(encoding="utf-8")


@dataclass
class DemoRun:
    out: Path
    corpus_name: str
    minutes: float
    console: Console
    sections: list[str] = field(default_factory=list)
    artifacts: dict[str, Path] = field(default_factory=dict)

    def section(self, title: str, body: str) -> None:
        self.sections.append(f"## {title}\n\n{body.strip()}\n")


def stage_corpus(run: DemoRun) -> None:
    text = load_corpus(run.corpus_name)
    path = run.out / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    run.artifacts["corpus"] = path
    run.section("Corpus", f"`{run.corpus_name}`: {len(text):,} characters, "
                f"{len(text.split()):,} words.")


def stage_tokenizer(run: DemoRun) -> None:
    from lmstack.tokenizer import train_bpe

    t0 = time.perf_counter()
    tok = train_bpe([run.artifacts["corpus"]], vocab_size=4096, show_progress=False)
    folder = run.out / "tokenizer"
    tok.save(folder)
    run.artifacts["tokenizer"] = folder
    sample = "Return the number of items in a container. 你好，世界 🙂"
    ids = tok.encode(sample)
    assert tok.decode(ids) == sample
    run.section("Tokenizer", f"Byte-level BPE, vocab {tok.vocab_size}, trained in "
                f"{time.perf_counter() - t0:.1f}s. `{sample}` → {len(ids)} tokens, "
                "decodes back exactly.")


def stage_train(run: DemoRun) -> None:
    from lmstack.train.demo_stage import stage_train as train_stage

    train_stage(run)  # a small Llama on the corpus; leaves run.artifacts["model"]


def stage_serve(run: DemoRun) -> None:
    from lmstack.serve.demo_stage import stage_serve as serve_stage

    serve_stage(run)  # the trained model behind the OpenAI API, asked via the openai client


STAGES = [stage_corpus, stage_tokenizer, stage_train, stage_serve]


def run_demo(out: Path, corpus: str = "stdlib", minutes: float = 3.0,
             console: Console | None = None) -> Path:
    console = console or Console()
    out.mkdir(parents=True, exist_ok=True)
    run = DemoRun(out, corpus, minutes, console)
    for stage in STAGES:
        title = stage.__name__.removeprefix("stage_")
        console.rule(f"[bold]{title}")
        t0 = time.perf_counter()
        stage(run)
        console.print(f"{title} done in {time.perf_counter() - t0:.1f}s")
    report = out / "report.md"
    atomic_write_text(report, "# lmstack demo report\n\n" + "\n".join(run.sections))
    return report
