"""Retrieval-augmented generation: retrieve passages, put them in a prompt as numbered sources,
generate through any `ChatModel`, and map the reply's [n] citations back to documents and
character spans. When the model cites nothing, the answer's sentences are attributed to the
sources that hold their words (attribution.py), marked as such.

Lewis et al., "Retrieval-Augmented Generation for Knowledge-Intensive NLP Tasks" (2020); the
citation format is prompt.py's. The model is reached only through the ChatModel protocol, so
the same pipeline runs on lmstack's engine in-process or on any OpenAI-compatible server.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from lmstack.chat.protocol import ChatModel
from lmstack.rag.attribution import attribute
from lmstack.rag.prompt import LAYOUTS, cited_numbers, drop_markers
from lmstack.rag.retriever import Hit, Retriever

ANSWER_PREFIX = re.compile(r"^answer\s*:\s*", re.IGNORECASE)
NOT_FOUND = "The documents do not say: nothing retrieved was relevant enough to answer from."


@dataclass(frozen=True)
class Citation:
    """Source [number] of the prompt, as the document and span it quotes. `kind`: "model" when
    the model wrote the [number], "attributed" when lmstack found the source after the fact."""

    number: int
    source: str
    start: int
    end: int
    text: str
    kind: str = "model"

    def to_dict(self) -> dict:
        return {"number": self.number, "source": self.source, "start": self.start,
                "end": self.end, "text": self.text, "kind": self.kind}


@dataclass
class Answer:
    """The reply with only valid citations kept; `dropped` counts citations of source numbers
    the prompt never had (a model inventing [7] when it saw three sources); `found` is False
    when retrieval fell below the threshold and no model was asked."""

    text: str
    citations: list[Citation] = field(default_factory=list)
    hits: list[Hit] = field(default_factory=list)
    dropped: int = 0
    found: bool = True

    def to_dict(self) -> dict:
        return {"answer": self.text, "citations": [c.to_dict() for c in self.citations],
                "sources": [h.to_dict() for h in self.hits], "dropped_citations": self.dropped,
                "found": self.found}


class RagPipeline:
    """`answer(question)` or `stream(question)` over `retriever` and `model`.

    `min_score`: when the best hit scores below it (or nothing is retrieved) the answer is
    NOT_FOUND and the model is not called. Its scale is the retriever's (cosine similarity
    for dense and hybrid). `layout`: the prompt's (prompt.LAYOUTS). `attribute`: cite the
    supporting sources of a reply that cites none (marked "attributed"). `sampling` goes to
    the model (default: greedy, 256 tokens).
    """

    def __init__(self, retriever: Retriever, model: ChatModel, k: int = 4,
                 min_score: float | None = None, layout: str = "sources_first",
                 attribute: bool = True, **sampling: Any) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, not {layout!r}")
        self.retriever, self.model, self.k, self.min_score = retriever, model, k, min_score
        self.messages, self.attribute = LAYOUTS[layout], attribute
        self.sampling = {"max_tokens": 256, "temperature": 0.0, **sampling}

    def retrieve(self, question: str) -> list[Hit]:
        """The top-k hits, or [] when even the best is below `min_score`."""
        hits = self.retriever.search(question, self.k)
        if not hits or (self.min_score is not None and hits[0].score < self.min_score):
            return []
        return hits

    def answer(self, question: str) -> Answer:
        hits = self.retrieve(question)
        if not hits:
            return Answer(NOT_FOUND, found=False)
        reply = self.model.chat(self.messages(question, hits), **self.sampling)
        return cite(reply.content, hits, self.attribute)

    def stream(self, question: str, hits: list[Hit] | None = None) -> Iterator[str | Answer]:
        """Text deltas as they are generated, then the final Answer (the same one `answer`
        gives for the same reply). `hits`: those `retrieve` already gave for this question
        (a server retrieves first, so a failure there is still an HTTP status)."""
        hits = self.retrieve(question) if hits is None else hits
        if not hits:
            yield NOT_FOUND
            yield Answer(NOT_FOUND, found=False)
            return
        parts = []
        for delta in self.model.stream(self.messages(question, hits), **self.sampling):
            parts.append(delta)
            yield delta
        yield cite("".join(parts), hits, self.attribute)


def cite(reply: str, hits: list[Hit], attribute_missing: bool = True) -> Answer:
    """The Answer for a model's reply to a prompt built from `hits`: [n] with 1 <= n <=
    len(hits) become citations; others are dropped from the text and counted. A leading
    "Answer:" (the answer_line layout's format) is taken off. If no valid [n] is left and
    `attribute_missing`, the sources supporting the reply's sentences are cited instead."""
    numbers = cited_numbers(reply)
    valid = [n for n in numbers if 1 <= n <= len(hits)]
    dropped = len(numbers) - len(valid)
    text = ANSWER_PREFIX.sub("", drop_markers(reply, set(valid)).strip())
    kind = "model"
    if not valid and attribute_missing:
        valid, kind = attribute(text, hits), "attributed"
    citations = [Citation(n, hits[n - 1].source, hits[n - 1].start, hits[n - 1].end,
                          hits[n - 1].text, kind) for n in valid]
    return Answer(text, citations, hits, dropped=dropped)
