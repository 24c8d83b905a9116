"""`lmstack rag eval`: retrieval quality (recall@k, MRR, nDCG@10) of BM25, dense and hybrid
retrieval on Cranfield or CMRC 2018, for one chunker; a thin shell over lmstack.rag.evaluate."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from lmstack.cli.args import UserError

rag_app = typer.Typer(no_args_is_help=True, help="Retrieval-augmented generation.")
DATASETS = {"cranfield": "retrieval/cranfield", "cmrc": "retrieval/cmrc2018_trial.json"}


@rag_app.command("eval")
def rag_eval(
    dataset: str = typer.Option("cranfield", help="cranfield or cmrc"),
    data: Path | None = typer.Option(
        None, help="the dataset's folder or file (default: under ../shared/data)"),
    retrievers: str = typer.Option("bm25,dense,hybrid", help="comma-separated: "
                                   "bm25, dense, hybrid (dense needs MiniLM; English only)"),
    chunker: str = typer.Option("recursive", help="fixed or recursive"),
    size: int = typer.Option(512, help="chunk size in characters"),
    overlap: int = typer.Option(64, help="characters shared by neighbouring chunks"),
    limit: int | None = typer.Option(None, help="evaluate only the first N judged queries"),
) -> None:
    """Score retrievers on a judged collection and print a table."""
    from lmstack.demo.corpus import find_shared_data
    from lmstack.rag.eval_sets import load_cmrc, load_cranfield
    from lmstack.rag.evaluate import build_retrievers, retrieval_metrics

    if dataset not in DATASETS:
        raise UserError(f"--dataset must be one of {', '.join(DATASETS)}, not {dataset!r}")
    if limit is not None and limit < 1:
        raise UserError("--limit must be at least 1")
    if data is None:
        shared = find_shared_data()
        if shared is None:
            raise UserError(f"no ../shared/data here; pass --data (the {dataset} files)")
        data = shared / DATASETS[dataset]
    judged = (load_cranfield if dataset == "cranfield" else load_cmrc)(data)
    if limit:
        judged = judged.head(limit)
    kinds = [k.strip() for k in retrievers.split(",") if k.strip()]
    embedder = None
    if {"dense", "hybrid"} & set(kinds):
        from lmstack.rag.minilm import load_minilm

        embedder = load_minilm()
    built = build_retrievers(judged.documents, kinds, chunker, size, overlap, embedder)
    table = Table(title=f"{judged.name}: {len(judged.queries)} queries, "
                  f"{len(judged.documents)} documents, {chunker} chunks of {size}")
    for column in ("retriever", "recall@1", "recall@5", "recall@10", "MRR", "nDCG@10"):
        table.add_column(column, justify="right" if column != "retriever" else "left")
    for name, retriever in built.items():
        m = retrieval_metrics(retriever, judged)
        table.add_row(name, *(f"{m[k]:.3f}" for k in
                              ("recall@1", "recall@5", "recall@10", "mrr", "ndcg@10")))
    Console().print(table)
