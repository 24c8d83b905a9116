"""The RAG prompt: retrieved passages as numbered sources, the question, and the rule to cite
them as [n]; and the reader of those [n] markers in the reply.

Numbered inline citations follow the style of Bing Chat / Perplexity and of "ALCE: Enabling
Large Language Models to Generate Text with Citations" (Gao et al., 2023).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lmstack.rag.retriever import Hit

SYSTEM = ("You answer questions using only the numbered sources below. Keep the answer short. "
          "After each fact, cite its source by number in square brackets, like [1] or [2]. "
          "If the sources do not contain the answer, say that the documents do not say.")

ANSWER_LINE_SYSTEM = "You answer questions using only the numbered sources."
ANSWER_LINE_FORMAT = ("Reply with one short line: Answer: <the answer, copied from a source> [n], "
                      "where n is the number of that source.")

# "[1]", "[2, 3]" and "[2][3]": a bracket of numbers separated by commas.
MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")


def numbered(hits: Sequence[Hit]) -> str:
    return "\n\n".join(f"[{n}] ({h.source})\n{h.text}" for n, h in enumerate(hits, start=1))


def rag_messages(question: str, hits: Sequence[Hit]) -> list[dict]:
    """System rule, then one user turn holding the numbered sources and the question."""
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Sources:\n\n{numbered(hits)}\n\nQuestion: {question}"}]


def answer_line_messages(question: str, hits: Sequence[Hit]) -> list[dict]:
    """The same sources, then the question and the reply's exact shape right before the
    model starts, for models that follow a format shown last better than a rule given first.
    SmolLM2-135M does not: it still cited in 1 of 49 answers and held the gold answer less often
    (0.33 against 0.43; benchmarks/retrieval_quality.py), so sources_first is the default."""
    return [{"role": "system", "content": ANSWER_LINE_SYSTEM},
            {"role": "user", "content": f"Sources:\n\n{numbered(hits)}\n\nQuestion: {question}"
                                        f"\n\n{ANSWER_LINE_FORMAT}"}]


# prompt layouts by name: RagPipeline(layout=...)
LAYOUTS = {"sources_first": rag_messages, "answer_line": answer_line_messages}


def cited_numbers(text: str) -> list[int]:
    """Every number cited in `text`, in order of first appearance."""
    found = [int(n) for m in MARKER.finditer(text) for n in m.group(1).split(",")]
    return list(dict.fromkeys(found))


def drop_markers(text: str, keep: set[int]) -> str:
    """`text` with the numbers not in `keep` taken out of its markers; a marker left empty
    goes, with the space before it."""
    def fix(m: re.Match) -> str:
        kept = [n.strip() for n in m.group(1).split(",") if int(n) in keep]
        if not kept:
            return ""
        return (" " if m.group(0).startswith(" ") else "") + f"[{', '.join(kept)}]"

    return re.sub(" ?" + MARKER.pattern, fix, text)
