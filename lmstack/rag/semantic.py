"""Semantic chunking: cut where the topic changes, found as a drop in the similarity of the
embeddings of neighbouring sentences.

The method of Greg Kamradt's "5 levels of text splitting" as LlamaIndex's
SemanticSplitterNodeParser runs it: each sentence is embedded together with `buffer` sentences
either side (a lone sentence is a noisy signal), the cosine distance between consecutive such
windows is taken, and a cut goes after every sentence whose distance to the next lies above the
`percentile`-th percentile of all of them (95: the sharpest 5% of changes). Chunks keep exact
spans, `text[start:end] == chunk.text`, as the other chunkers' do.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from itertools import pairwise

import numpy as np

from lmstack.rag.chunking import Chunk, trimmed_chunks

# A sentence ends after . ! ? followed by space, after a Chinese 。！？； or at a line break;
# the whitespace after the end stays with the sentence before it.
SENTENCE_END = re.compile(r"[.!?](?=\s)\s*|[。！？；]\s*|\n\s*")

Embed = Callable[[Sequence[str]], np.ndarray]


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """Spans tiling `text`, one sentence each."""
    cuts = [m.end() for m in SENTENCE_END.finditer(text) if 0 < m.end() < len(text)]
    bounds = [0, *sorted(set(cuts)), len(text)]
    return [(a, b) for a, b in pairwise(bounds) if b > a]


def window_distances(text: str, spans: list[tuple[int, int]], embed: Embed,
                     buffer: int = 1) -> np.ndarray:
    """Cosine distance [n - 1] between each sentence's window and the next one's."""
    windows = [text[spans[max(0, i - buffer)][0]:spans[min(len(spans) - 1, i + buffer)][1]]
               for i in range(len(spans))]
    vectors = np.asarray(embed(windows), dtype=np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return 1.0 - (vectors[:-1] * vectors[1:]).sum(1)


def semantic_chunks(text: str, embed: Embed, buffer: int = 1,
                    percentile: float = 95.0) -> list[Chunk]:
    """Chunks of whole sentences, cut where neighbouring windows' embeddings differ most.
    `embed` maps texts to vectors [n, dim] (e.g. Embedder.encode)."""
    if buffer < 0 or not 0 <= percentile <= 100:
        raise ValueError(f"need buffer >= 0 and 0 <= percentile <= 100, got {buffer=} "
                         f"{percentile=}")
    spans = sentence_spans(text)
    if len(spans) < 2:
        return trimmed_chunks(text, spans)
    distance = window_distances(text, spans, embed, buffer)
    threshold = np.percentile(distance, percentile)
    cuts = [i + 1 for i in np.flatnonzero(distance > threshold).tolist()]  # a cut after i
    bounds = [0, *cuts, len(spans)]
    return trimmed_chunks(text, [(spans[a][0], spans[b - 1][1])
                                 for a, b in pairwise(bounds)])
