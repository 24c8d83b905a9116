"""`lmstack apps kb ingest|ask|serve`: the knowledge-base assistant from the command line; a
thin shell over lmstack.apps.kb."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from lmstack.cli.args import DEFAULT_MODEL, MODEL_HELP, UserError, check_port_free, model_path

kb_app = typer.Typer(no_args_is_help=True,
                     help="A knowledge-base assistant: ingest a folder, ask it with citations.")
console = Console()
KB_HELP = "the knowledge-base folder (store.sqlite, vectors.idx, kb.json)"


@kb_app.command("ingest")
def kb_ingest(
    root: Path = typer.Argument(..., help="the folder of documents (.txt .md .html .pdf)"),
    kb: Path = typer.Option(..., "--kb", help=KB_HELP),
    only: Path = typer.Option(Path("."), "--only", help="ingest just this sub-folder of ROOT"),
    chunker: str = typer.Option("recursive", help="fixed or recursive"),
    size: int = typer.Option(800, help="chunk size in characters"),
    overlap: int = typer.Option(100, help="characters shared by neighbouring chunks"),
    retriever: str = typer.Option("hybrid", help="bm25, dense or hybrid (dense: MiniLM)"),
) -> None:
    """Load, chunk, store and embed the documents under ROOT; again later, only what changed."""
    from lmstack.apps.kb import KnowledgeBase

    base = KnowledgeBase.create(kb, root, chunker, size, overlap, retriever)
    counts = base.ingest(only)
    console.print(", ".join(f"{k} {v}" for k, v in counts.items()) + f" -> {kb}")


def _pipeline(kb: Path, model: Path, k: int, max_tokens: int):
    from lmstack.apps.kb import KnowledgeBase
    from lmstack.engine.chat_model import EngineChatModel
    from lmstack.rag.pipeline import RagPipeline

    base = KnowledgeBase(kb)
    model_path(model)
    return RagPipeline(base, EngineChatModel(model), k=k, min_score=base.min_score,
                       max_tokens=max_tokens)


@kb_app.command("ask")
def kb_ask(
    question: str = typer.Argument(..., help="what to ask the documents"),
    kb: Path = typer.Option(..., "--kb", help=KB_HELP),
    model: Path = typer.Option(DEFAULT_MODEL, "--model", help=MODEL_HELP),
    k: int = typer.Option(4, help="passages put in the prompt"),
    max_tokens: int = typer.Option(256, help="longest answer, in tokens"),
) -> None:
    """Answer from the knowledge base, streamed, then the sources it cited."""
    from lmstack.rag.pipeline import Answer

    if not question.strip() or k < 1 or max_tokens < 1:
        raise UserError("give a question, and --k and --max-tokens of at least 1")
    for item in _pipeline(kb, model, k, max_tokens).stream(question):
        if isinstance(item, Answer):
            console.print()
            for c in item.citations:
                how = "" if c.kind == "model" else " [dim](attributed: holds the answer's words)[/]"
                console.print(f"[bold][{c.number}][/] {escape(c.source)} "
                              f"chars {c.start}-{c.end}{how}: {escape(c.text[:100])}…")
            if item.found and not item.citations:
                console.print("[dim]no source cited or found to hold the answer; retrieved: "
                              + escape(", ".join(h.source for h in item.hits)) + "[/]")
        else:
            console.print(item, end="", markup=False, highlight=False, soft_wrap=True)


@kb_app.command("serve")
def kb_serve(
    kb: Path = typer.Option(..., "--kb", help=KB_HELP),
    model: Path = typer.Option(DEFAULT_MODEL, "--model", help=MODEL_HELP),
    host: str = typer.Option("127.0.0.1", help="interface; 0.0.0.0 exposes it to the network"),
    port: int = typer.Option(8000, help="TCP port"),
) -> None:
    """The knowledge base's page at /kb, /v1/retrieve, /v1/rag/answer and the OpenAI API."""
    from lmstack.apps.kb import KnowledgeBase
    from lmstack.apps.kb.server import kb_app as make_app
    from lmstack.serve import load_entries
    from lmstack.serve import serve as run_server

    check_port_free(host, port)
    base = KnowledgeBase(kb)
    model_path(model)
    models = load_entries([model])
    console.print(f"knowledge base page: http://{host}:{port}/kb   API: http://{host}:{port}/v1")
    run_server(make_app(base, models, min_score=base.min_score), host=host, port=port)
