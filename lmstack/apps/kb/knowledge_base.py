"""A knowledge base on disk: one folder holding `kb.json` (where the documents come from and
how they are cut), `store.sqlite` (documents and chunk spans) and `vectors.idx` (one MiniLM
vector per chunk id).

Ingest is incremental: the store reports which chunk ids a file's change removed, and the
vector index drops them; chunks the index does not hold yet are embedded, so an unchanged
folder costs no embedding at all. The index is saved (temp file, then rename) after the
store's commits; a crash between the two leaves chunks unembedded, which the next ingest
embeds. (Dropping the removed ids after such a crash is the store/index coupling planned in
retrieve/store.py.)
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from lmstack.fileio import atomic_write_text
from lmstack.rag.evaluate import CHUNKERS, RETRIEVERS
from lmstack.rag.loaders import load_folder
from lmstack.rag.retriever import (
    MIN_COSINE,
    BM25Retriever,
    DenseRetriever,
    Hit,
    HybridRetriever,
    Passage,
)
from lmstack.retrieve.index import ExactIndex, VectorIndex
from lmstack.retrieve.store import DocumentStore

SETTINGS, STORE, VECTORS = "kb.json", "store.sqlite", "vectors.idx"


class KnowledgeBase:
    """`KnowledgeBase.create(folder, root)` once, then `KnowledgeBase(folder)`; `ingest()`
    syncs with the files under root; `search(query, k)` is the Retriever protocol."""

    def __init__(self, folder: str | Path, embedder=None) -> None:
        self.folder = Path(folder)
        path = self.folder / SETTINGS
        if not path.is_file():
            raise ValueError(f"{self.folder} is not a knowledge base (no {SETTINGS}); create "
                             "one with `lmstack apps kb ingest FOLDER --kb KB`")
        self.settings = json.loads(path.read_text(encoding="utf-8"))
        self.root = Path(self.settings["root"])
        self._embedder = embedder
        self._searcher = None  # built on first search, rebuilt after an ingest
        self._lock = threading.Lock()  # a server searches from several threads

    def _store(self) -> DocumentStore:
        # A connection per use: sqlite3 connections belong to the thread that opened them,
        # and a server reads from worker threads.
        return DocumentStore(self.folder / STORE)

    @classmethod
    def create(cls, folder: str | Path, root: str | Path, chunker: str = "recursive",
               size: int = 800, overlap: int = 100, retriever: str = "hybrid",
               embedder=None) -> KnowledgeBase:
        """A new KB in `folder` over the documents under `root` (or the existing one, when
        its settings match)."""
        if chunker not in CHUNKERS or retriever not in RETRIEVERS:
            raise ValueError(f"chunker must be one of {', '.join(CHUNKERS)} and retriever one "
                             f"of {', '.join(RETRIEVERS)}")
        root = Path(root).resolve()
        if not root.is_dir():
            raise ValueError(f"{root} is not a folder to ingest")
        folder = Path(folder)
        settings = {"root": str(root), "chunker": chunker, "size": size, "overlap": overlap,
                    "retriever": retriever}
        path = folder / SETTINGS
        if path.is_file():
            old = json.loads(path.read_text(encoding="utf-8"))
            if old != settings:
                raise ValueError(f"{folder} already holds a knowledge base with other "
                                 f"settings {old}; use another --kb folder or delete it")
        else:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write_text(path, json.dumps(settings, indent=1))
        return cls(folder, embedder)

    # ---------------------------------------------------------------- writing
    @property
    def dense(self) -> bool:
        return self.settings["retriever"] != "bm25"

    @property
    def min_score(self) -> float | None:
        """The answer's "not in the documents" threshold: on cosine similarity for dense and
        hybrid; BM25 points have no fixed scale, so none (no shared term still finds nothing)."""
        return MIN_COSINE if self.dense else None

    @property
    def embedder(self):
        if self._embedder is None:
            from lmstack.rag.minilm import load_minilm

            self._embedder = load_minilm()
        return self._embedder

    def _index(self) -> VectorIndex:
        path = self.folder / VECTORS
        return VectorIndex.load(path) if path.is_file() else ExactIndex(self.embedder.dim)

    def ingest(self, folder: str | Path = ".") -> dict[str, int]:
        """Sync with the files under root/folder (paths resolving outside root are refused):
        new and changed files are (re)chunked and embedded, deleted ones dropped."""
        documents = load_folder(self.root, folder)
        chunker = CHUNKERS[self.settings["chunker"]]
        counts = {"added": 0, "replaced": 0, "unchanged": 0, "removed": 0}
        removed: list[int] = []
        with self._store() as store:
            for doc in documents:
                spans = [(c.start, c.end) for c in chunker(doc.text, self.settings["size"],
                                                            self.settings["overlap"])]
                change = store.ingest(doc.source, doc.text, spans)
                counts[change.status] += 1
                removed += change.removed
            if Path(folder) == Path("."):  # only a whole-root sync knows which files went
                counts["removed"] = len(set(store.sources()) - {d.source for d in documents})
                removed += store.prune(d.source for d in documents).removed
            chunks = {c.id: c for c in store.chunks()}
        if self.dense:
            self._sync_vectors(removed, chunks)
        counts["chunks"] = len(chunks)
        self._searcher = None
        return counts

    def _sync_vectors(self, stale: list[int], chunks: dict) -> None:
        """Drop the `stale` chunk ids from the index; embed the store's chunks it lacks."""
        index = self._index()
        fresh = [i for i in chunks if i not in index]
        if stale:
            index.delete(stale)
        for start in range(0, len(fresh), 256):  # bounded memory on a big first ingest
            ids = fresh[start:start + 256]
            index.add(ids, self.embedder.encode([chunks[i].text for i in ids]))
        if stale or fresh or not (self.folder / VECTORS).is_file():
            index.save(self.folder / VECTORS)

    # ---------------------------------------------------------------- reading
    def _build_searcher(self):
        with self._store() as store:
            passages = [Passage(c.id, c.text, c.source, c.start, c.end)
                        for c in store.chunks()]
        if not passages:
            return None
        lexical = BM25Retriever(passages)
        kind = self.settings["retriever"]
        if kind == "bm25":
            return lexical
        dense = DenseRetriever(passages, self.embedder, self._index())
        return dense if kind == "dense" else HybridRetriever(lexical, dense)

    def search(self, query: str, k: int = 5) -> list[Hit]:
        with self._lock:
            if self._searcher is None:
                self._searcher = self._build_searcher()
        return [] if self._searcher is None else self._searcher.search(query, k)

    def sources(self) -> list[str]:
        with self._store() as store:
            return store.sources()

    def document(self, source: str) -> str | None:
        """The stored text of `source` (what a citation's span points into), or None."""
        with self._store() as store:
            found = store.document(source)
        return None if found is None else found[0]
