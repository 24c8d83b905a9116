"""A knowledge base: documents and chunks in the SQLite store, their vectors in a VectorIndex,
kept in step across re-ingests, edits, deletions and crashes.

The store is the truth and the index is a view of it. Every change is first committed to the
store (one transaction), then `sync` makes the index hold exactly the store's chunk ids:
vectors of ids the store no longer has are deleted, chunks the index lacks are embedded and
added, and the index file is saved atomically. The same `sync` runs on open, so a crash between
the store's commit and the index's save (the index file then being the old one) is repaired on
the next open, re-embedding only the chunks the crash left out.

Files, in one folder: `store.sqlite` and `index.npz`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Protocol, Self

import numpy as np

from lmstack.rag.chunking import recursive_chunks
from lmstack.rag.loaders import Document, load_folder
from lmstack.retrieve.index import FaissIndex, Filter, VectorIndex
from lmstack.retrieve.mmr import mmr
from lmstack.retrieve.store import Change, DocumentStore, StoredChunk

Spans = Callable[[str], Sequence[tuple[int, int]]]
EMBED_BATCH = 256  # chunks embedded per call while syncing: bounded memory on a big ingest


class TextEncoder(Protocol):
    """What the knowledge base needs of an embedder (lmstack.embed.Embedder is one)."""

    dim: int

    def encode(self, texts: Sequence[str]) -> np.ndarray: ...


def recursive_spans(text: str, size: int = 800, overlap: int = 100) -> list[tuple[int, int]]:
    """The default chunker: recursive_chunks' spans (about 200 MiniLM tokens of English)."""
    return [(c.start, c.end) for c in recursive_chunks(text, size, overlap)]


class KnowledgeBase:
    """`KnowledgeBase(folder, embedder)` opens (or creates) the store and index in `folder`.

    new_index: builds the empty index the first time (faiss HNSW by default; QdrantIndex or
    ExactIndex fit the same slot). chunker: text -> character spans.
    """

    def __init__(self, folder: str | Path, embedder: TextEncoder, chunker: Spans = recursive_spans,
                 new_index: Callable[[int], VectorIndex] = FaissIndex) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.embedder, self.chunker = embedder, chunker
        self.index_path = self.folder / "index.npz"
        self.index = (VectorIndex.load(self.index_path) if self.index_path.exists()
                      else new_index(embedder.dim))
        if self.index.dim != embedder.dim:
            raise ValueError(f"{self.index_path} holds {self.index.dim}-d vectors but the "
                             f"embedder makes {embedder.dim}-d ones: use the embedder it was "
                             "built with, or a new folder")
        self.store = DocumentStore(self.folder / "store.sqlite")
        self.sync()

    # -- changes: the store first, then the index follows -----------------------------------
    def ingest(self, source: str, text: str, metadata: dict | None = None) -> Change:
        """Add or replace one document; the same text again changes nothing."""
        change = self.store.ingest(source, text, self.chunker(text), metadata)
        self.sync()
        return change

    def remove(self, source: str) -> Change:
        change = self.store.remove(source)
        self.sync()
        return change

    def ingest_documents(self, docs: Iterable[Document], prune: bool = True) -> dict[str, str]:
        """Ingest every document, then (prune) drop those not among them, then one sync: a
        folder's state in one pass. Returns {source: status}."""
        statuses = {d.source: self.store.ingest(d.source, d.text, self.chunker(d.text)).status
                    for d in docs}
        if prune:
            for source in self.store.sources():
                if source not in statuses:
                    statuses[source] = self.store.remove(source).status
        self.sync()
        return statuses

    def ingest_folder(self, root: str | Path) -> dict[str, str]:
        """The files under `root` (lmstack.rag.loaders); files gone from it leave the base."""
        return self.ingest_documents(load_folder(root))

    def sync(self) -> tuple[int, int]:
        """Make the index hold exactly the store's chunks; (added, deleted) counts."""
        want, have = self.store.chunk_ids(), set(self.index.ids())
        stale = list(have - want)
        missing = sorted(want - have)
        self.index.delete(stale)
        if missing:
            needed = set(missing)
            chunks = [c for c in self.store.chunks() if c.id in needed]
            doc_meta = {s: self.store.document(s)[1] for s in {c.source for c in chunks}}
            for i in range(0, len(chunks), EMBED_BATCH):
                part = chunks[i:i + EMBED_BATCH]
                self.index.add([c.id for c in part], self.embedder.encode([c.text for c in part]),
                               [doc_meta[c.source] | {"source": c.source, "ordinal": c.ordinal}
                                for c in part])
        if stale or missing or not self.index_path.exists():
            self.index.save(self.index_path)
        return len(missing), len(stale)

    # -- reading ------------------------------------------------------------------------------
    def search(self, query: str, k: int = 5, filter: Filter = None,
               mmr_lambda: float | None = None, fetch_k: int = 20) -> list[tuple[StoredChunk,
                                                                                   float]]:
        """The k chunks nearest to `query`, best first, as (chunk, cosine score). `filter` runs
        on the document metadata plus "source" and "ordinal". With `mmr_lambda`, the fetch_k
        nearest are re-ordered by maximal marginal relevance (retrieve/mmr.py) first."""
        q = self.embedder.encode([query])[0]
        hits = self.index.search(q, k if mmr_lambda is None else max(k, fetch_k), filter)
        found = [(self.store.chunk(h.id), h.score) for h in hits]
        if mmr_lambda is not None and found:
            vectors = self.embedder.encode([c.text for c, _ in found])
            found = [found[i] for i in mmr(q, vectors, k, mmr_lambda)]
        return found

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
