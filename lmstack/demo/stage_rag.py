"""Demo stage `rag`: retrieval-augmented answers over Python's language reference
(`pydoc_data.topics`, on every machine with Python), by SmolLM2 with [n] citations.

Retrieval is hybrid (BM25 + MiniLM, fused by reciprocal rank) when the MiniLM wheel is
installed, BM25 alone otherwise; the pipeline is lmstack.rag.pipeline's.
"""

from __future__ import annotations

import time
from typing import Any

from lmstack.demo.registry import Stage
from lmstack.demo.run import fence
from lmstack.demo.smollm2 import INSTALL, engine_for_smollm2

QUESTIONS = ("Which exception does an assert statement raise when its expression is false?",
             "What does the break statement terminate?",
             "Which special method is called to implement the built-in function len()?")
# model: (model, tokenizer, load seconds) to reuse; embedder: an Embedder, or "bm25" for none
DEFAULTS = {"max_tokens": 64, "k": 3, "model": None, "embedder": None,
            "questions": QUESTIONS}


def _retriever(embedder: Any) -> tuple[Any, str]:
    from pydoc_data.topics import topics

    from lmstack.rag.evaluate import build_retrievers

    if embedder is None:
        try:
            from lmstack.rag.minilm import load_minilm

            embedder = load_minilm()
        except ValueError:
            embedder = "bm25"
    if embedder == "bm25":
        return build_retrievers(dict(topics), ["bm25"], size=800, overlap=100)["bm25"], \
            "BM25 (the MiniLM wheel is not installed, so no dense half)"
    return (build_retrievers(dict(topics), ["hybrid"], size=800, overlap=100,
                             embedder=embedder)["hybrid"],
            "hybrid: BM25 and MiniLM cosine, fused by reciprocal rank")


def stage_rag(run: Any) -> None:
    from lmstack.engine.chat_model import EngineChatModel
    from lmstack.rag.pipeline import RagPipeline

    opts = run.settings("rag", DEFAULTS)
    loaded = engine_for_smollm2(opts["model"])
    if loaded is None:
        run.section("Answers with citations (RAG)", f"Skipped: SmolLM2 is not installed. "
                    f"Run `{INSTALL}`, then `lmstack demo --stages rag`.")
        return
    started = time.perf_counter()
    retriever, how = _retriever(opts["embedder"])
    index_s = time.perf_counter() - started
    chat = EngineChatModel(loaded[0], name="smollm2")
    pipeline = RagPipeline(retriever, chat, k=opts["k"], max_tokens=opts["max_tokens"])
    body = []
    for question in opts["questions"]:
        t0 = time.perf_counter()
        answer = pipeline.answer(question)
        seconds = time.perf_counter() - t0
        run.console.print(f"Q: {question}\nA: {answer.text[:200]}")
        cited = [f"[{c.number}]{' (attributed)' if c.kind == 'attributed' else ''} "
                 f"`{c.source}` characters {c.start}–{c.end}"
                 for c in answer.citations] or ["(no valid citation)"]
        retrieved = ", ".join(f"`{h.source}`" for h in answer.hits)
        body += [f"**Q:** {question}", "", fence(answer.text), "",
                 (f"Cited: {'; '.join(cited)}. Retrieved: {retrieved}. "
                  f"Invented citations dropped: {answer.dropped}. {seconds:.1f} s."), ""]
    run.section("Answers with citations (RAG)", "\n".join([
        (f"The Python language reference (`pydoc_data.topics`, 79 topics) cut into chunks of "
         f"at most 800 characters and indexed ({how}) in {index_s:.1f} s. For each question "
         f"the {opts['k']} best chunks go into the prompt as numbered sources; SmolLM2-135M-"
         "Instruct answers greedily and cites them as [n]; each citation maps back to a topic "
         "and a character span. Citations of sources the prompt did not have are dropped. "
         "When the model cites nothing (a 135M model often does not), lmstack cites the "
         "source holding most of the answer's words, marked (attributed)."),
        "", *body,
        ("How often a 135M model answers right and cites the chunk that holds the answer is "
         "what `benchmarks/retrieval_quality.py` measures (exact match, F1, citation accuracy "
         "on 49 such questions; the README has the numbers). Build your own: `lmstack apps kb ingest DOCS --kb KB`, then "
         "`lmstack apps kb ask \"...\" --kb KB` or `lmstack apps kb serve --kb KB`."),
    ]))


STAGE = Stage("rag", 58, stage_rag, "RAG over the Python reference: SmolLM2 answers with "
              "citations")
