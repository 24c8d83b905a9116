"""Post-hoc attribution: when the model cited nothing, find the retrieved source that each
sentence of its answer came from.

A 135M model reads sources well enough to copy the answer out of them but rarely writes the
[n] markers a prompt asks for (SmolLM2-135M: in 1 of 49 answers on the Python reference). The
usual fallback for small models (as in "RARR: Researching and Revising What Language Models
Say", Gao et al., 2023, and the attribute-after-generation baselines of ALCE) is to attribute
after generation: cite, for each answer sentence, the source that best supports it. Here
support is lexical: the share of the sentence's distinctive tokens (those not found in every
retrieved source, so "the" and "is" never decide) that the source contains. A sentence whose
best source holds under half of them is left uncited rather than guessed at.

The pipeline marks such citations `attributed`, apart from the model's own, so a reader can
tell "the model said it used [2]" from "lmstack found [2] holds these words".
"""

from __future__ import annotations

from collections.abc import Sequence

from lmstack.rag.retriever import Hit
from lmstack.rag.semantic import sentence_spans
from lmstack.retrieve.bm25 import tokenize

MIN_SUPPORT = 0.5


def supporting_source(sentence: str, sources: Sequence[set[str]],
                      min_support: float = MIN_SUPPORT) -> int | None:
    """Index of the source holding the largest share (at least `min_support`) of the
    sentence's distinctive tokens; ties go to the higher-ranked source; None if none does."""
    common = set.intersection(*sources) if len(sources) > 1 else set()
    tokens = set(tokenize(sentence)) - common
    if not tokens:
        return None
    support = [len(tokens & source) / len(tokens) for source in sources]
    best = max(range(len(sources)), key=lambda i: (support[i], -i))
    return best if support[best] >= min_support else None


def attribute(text: str, hits: Sequence[Hit], min_support: float = MIN_SUPPORT) -> list[int]:
    """Source numbers (1-based, as the prompt numbered `hits`) supporting the sentences of
    `text`, in order of first use."""
    if not hits:
        return []
    sources = [set(tokenize(h.text)) for h in hits]
    found = [supporting_source(text[a:b], sources, min_support) for a, b in sentence_spans(text)]
    return list(dict.fromkeys(i + 1 for i in found if i is not None))
