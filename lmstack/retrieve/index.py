"""`VectorIndex`: one interface for dense retrieval (add, upsert, delete, filtered search, save,
load) over an exact backend (a matrix product) and faiss (Johnson et al., 2017; HNSW or flat).

Scores are inner products, so cosine similarity when the vectors are unit length (as the
Embedder makes them). Saves are one file, written to a temp name and renamed into place.
"""

from __future__ import annotations

import io
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np

from lmstack.fileio import atomic_write

Id = str | int
Filter = Mapping[str, Any] | Callable[[dict], bool] | None


class Hit(NamedTuple):
    """One search result. A tuple rather than a frozen dataclass: a batch of 1000 queries
    makes 10,000 of them, and a tuple is built several times faster."""

    id: Id
    score: float
    metadata: dict


def matches(metadata: dict, where: Filter) -> bool:
    """A filter is a callable on the metadata, or {key: value} (all must hold; a list or set
    value means any of them)."""
    if where is None:
        return True
    if callable(where):
        return bool(where(metadata))
    for key, want in where.items():
        have = metadata.get(key)
        if isinstance(want, (list, tuple, set, frozenset)):
            if have not in want:
                return False
        elif have != want:
            return False
    return True


class VectorIndex(ABC):
    """The bookkeeping every backend shares: user ids <-> int64 labels, metadata, filters and
    the file format. A backend stores vectors under labels and answers top-k by label."""

    kind: str = ""  # the name save() writes and load() dispatches on
    kinds: ClassVar[dict[str, type[VectorIndex]]] = {}  # every backend by kind, once defined

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            VectorIndex.kinds[cls.kind] = cls

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._label: dict[Id, int] = {}     # live user id -> label
        self._id: dict[int, Id] = {}        # label -> user id
        self._meta: dict[int, dict] = {}    # label -> metadata
        # Labels are never reused: a backend that cannot remove (HNSW) keeps a dead label's
        # vector, and a reused label would bring it back to life.
        self._next_label = 0

    def __len__(self) -> int:
        return len(self._label)

    def __contains__(self, id: Id) -> bool:
        return id in self._label

    def ids(self) -> list[Id]:
        """Every live id, in insertion order."""
        return list(self._label)

    def _check(self, ids: Sequence[Id], vectors: np.ndarray,
               metadata: Sequence[dict] | None) -> np.ndarray:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"vectors must be [n, {self.dim}], got {vectors.shape}")
        if len(ids) != len(vectors) or (metadata is not None and len(metadata) != len(ids)):
            raise ValueError("ids, vectors and metadata must have the same length")
        if len(set(ids)) != len(ids):
            raise ValueError("ids repeat within one call")
        return vectors

    def add(self, ids: Sequence[Id], vectors: np.ndarray,
            metadata: Sequence[dict] | None = None) -> None:
        """Add new entries; an id already present is an error (use upsert to replace)."""
        vectors = self._check(ids, vectors, metadata)
        present = [i for i in ids if i in self._label]
        if present:
            raise KeyError(f"ids already in the index: {present[:5]}; use upsert to replace")
        labels = np.arange(self._next_label, self._next_label + len(ids), dtype=np.int64)
        self._next_label += len(ids)
        self._add(labels, vectors)
        for k, (i, label) in enumerate(zip(ids, labels.tolist(), strict=True)):
            self._label[i], self._id[label] = label, i
            self._meta[label] = dict(metadata[k]) if metadata is not None else {}

    def upsert(self, ids: Sequence[Id], vectors: np.ndarray,
               metadata: Sequence[dict] | None = None) -> None:
        """Add, replacing the vector and metadata of ids already present."""
        self._check(ids, vectors, metadata)
        self.delete([i for i in ids if i in self._label])
        self.add(ids, vectors, metadata)

    def delete(self, ids: Sequence[Id]) -> int:
        """Remove these ids (unknown ones are ignored); returns how many were removed."""
        labels = [self._label.pop(i) for i in ids if i in self._label]
        for label in labels:
            del self._id[label], self._meta[label]
        if labels:
            self._remove(np.array(labels, dtype=np.int64))
        return len(labels)

    def search(self, query: np.ndarray, k: int = 10, filter: Filter = None) -> list[Hit]:
        """The k entries with the highest inner product with `query`, best first."""
        return self.search_batch(np.asarray(query)[None], k, filter)[0]

    def search_batch(self, queries: np.ndarray, k: int = 10,
                     filter: Filter = None) -> list[list[Hit]]:
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ValueError(f"queries must be [m, {self.dim}], got {queries.shape}")
        allowed = None
        if filter is not None:
            allowed = np.array([lb for lb, m in self._meta.items() if matches(m, filter)],
                               dtype=np.int64)
        k = min(k, len(self) if allowed is None else len(allowed))
        if k <= 0:
            return [[] for _ in queries]
        scores, labels = self._search(queries, k, allowed)
        # Plain Python lists and one dict lookup per hit: at faiss speeds this loop is a
        # sizeable part of a query's time. Label -1 (a short row) finds no id and is dropped.
        user_id, meta = self._id.get, self._meta
        return [[Hit(i, s, meta[lb]) for s, lb in zip(row_s, row_l, strict=True)
                 if (i := user_id(lb)) is not None]
                for row_s, row_l in zip(scores.tolist(), labels.tolist(), strict=True)]

    def save(self, path: str | Path) -> None:
        """One .npz file (no pickles), replaced atomically: a crash leaves the old file."""
        live = sorted(self._id)
        state = {"kind": self.kind, "dim": self.dim, "next_label": self._next_label,
                 "labels": live, "ids": [self._id[lb] for lb in live],
                 "metadata": [self._meta[lb] for lb in live], "options": self._options()}
        arrays = {"state": np.array(json.dumps(state)), **self._arrays()}

        def write(tmp: str) -> None:
            buffer = io.BytesIO()
            np.savez(buffer, **arrays)
            Path(tmp).write_bytes(buffer.getvalue())

        atomic_write(path, write)

    @staticmethod
    def load(path: str | Path) -> VectorIndex:
        with np.load(path, allow_pickle=False) as f:
            arrays = {name: f[name] for name in f.files}
        state = json.loads(str(arrays.pop("state")))
        backend = VectorIndex.kinds.get(state["kind"])
        if backend is None:  # a backend in its own module (qdrant) registers when imported
            raise ValueError(f"{path}: index kind {state['kind']!r} is not loaded; known: "
                             f"{sorted(VectorIndex.kinds)} (import lmstack.retrieve.qdrant "
                             "for 'qdrant')")
        index = backend._restore(state["dim"], state["options"], arrays)
        index._next_label = state["next_label"]
        for label, i, meta in zip(state["labels"], state["ids"], state["metadata"], strict=True):
            index._label[i], index._id[label], index._meta[label] = label, i, meta
        return index

    # -- what a backend provides --------------------------------------------------------
    @abstractmethod
    def _add(self, labels: np.ndarray, vectors: np.ndarray) -> None: ...

    @abstractmethod
    def _remove(self, labels: np.ndarray) -> None: ...

    @abstractmethod
    def _search(self, queries: np.ndarray, k: int,
                allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, labels) per query among live labels (and `allowed`, if given);
        label -1 pads a row that found fewer."""

    def _options(self) -> dict:
        return {}

    @abstractmethod
    def _arrays(self) -> dict[str, np.ndarray]: ...

    @classmethod
    @abstractmethod
    def _restore(cls, dim: int, options: dict, arrays: dict) -> VectorIndex: ...


class ExactIndex(VectorIndex):
    """Brute force: every query against every vector in one matrix product. Exact, and the
    yardstick the approximate backends' recall is measured against."""

    kind = "exact"

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self._vectors = np.zeros((0, dim), dtype=np.float32)
        self._labels = np.zeros(0, dtype=np.int64)

    def _add(self, labels, vectors):
        self._vectors = np.concatenate([self._vectors, vectors])
        self._labels = np.concatenate([self._labels, labels])

    def _remove(self, labels):
        keep = ~np.isin(self._labels, labels)
        self._vectors, self._labels = self._vectors[keep], self._labels[keep]

    def _search(self, queries, k, allowed):
        vectors, labels = self._vectors, self._labels
        if allowed is not None:
            rows = np.isin(labels, allowed)
            vectors, labels = vectors[rows], labels[rows]
        scores = queries @ vectors.T
        # argpartition finds the k best in linear time; only those k are then sorted.
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        top_scores = np.take_along_axis(scores, top, 1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        return np.take_along_axis(top_scores, order, 1), labels[np.take_along_axis(top, order, 1)]

    def _arrays(self):
        return {"vectors": self._vectors, "vector_labels": self._labels}

    @classmethod
    def _restore(cls, dim, options, arrays):
        index = cls(dim)
        index._vectors, index._labels = arrays["vectors"], arrays["vector_labels"]
        return index


class FaissIndex(VectorIndex):
    """faiss as the engine: `hnsw` (IndexHNSWFlat, approximate, fast) or `flat` (exact), inside
    an IndexIDMap2 so faiss answers with our labels."""

    kind = "faiss"

    def __init__(self, dim: int, method: str = "hnsw", m: int = 32, ef_construction: int = 64,
                 ef_search: int = 64) -> None:
        import faiss

        super().__init__(dim)
        if method not in ("hnsw", "flat"):
            raise ValueError(f"method must be 'hnsw' or 'flat', not {method!r}")
        self.method, self.m, self.ef_construction = method, m, ef_construction
        self.ef_search = ef_search
        if method == "hnsw":
            inner = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = ef_construction
        else:
            inner = faiss.IndexFlatIP(dim)
        self._faiss = faiss.IndexIDMap2(inner)
        # faiss's HNSW cannot remove vectors: deleted labels stay in the graph (still useful
        # for routing) and are masked out of every search.
        self._dead: set[int] = set()

    def _add(self, labels, vectors):
        self._faiss.add_with_ids(vectors, labels)

    def _remove(self, labels):
        if self.method == "flat":
            self._faiss.remove_ids(labels)
        else:
            self._dead.update(labels.tolist())

    def _search(self, queries, k, allowed):
        import faiss

        selector = None
        if allowed is not None:
            selector = faiss.IDSelectorBatch(allowed)
        elif self._dead:
            dead = faiss.IDSelectorBatch(np.fromiter(self._dead, dtype=np.int64))
            selector = faiss.IDSelectorNot(dead)
        if self.method == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, k))
        else:
            params = faiss.SearchParameters()
        if selector is not None:
            params.sel = selector
        # `selector` (and `dead`) must outlive the call: the C++ side holds a bare pointer.
        scores, labels = self._faiss.search(queries, k, params=params)
        return scores, labels

    def _options(self):
        return {"method": self.method, "m": self.m, "ef_construction": self.ef_construction,
                "ef_search": self.ef_search, "dead": sorted(self._dead)}

    def _arrays(self):
        import faiss

        return {"faiss": faiss.serialize_index(self._faiss)}

    @classmethod
    def _restore(cls, dim, options, arrays):
        import faiss

        dead = options.pop("dead")
        index = cls(dim, **options)
        index._faiss = faiss.deserialize_index(arrays["faiss"])
        index._dead = set(dead)
        return index
