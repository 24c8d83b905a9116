"""`QdrantIndex`: the VectorIndex interface over a Qdrant collection (qdrant-client).

Qdrant runs in-process for development (`location=":memory:"`, or a folder for local, on-disk
mode) and as a server for a cluster (`url="http://host:6333"`): the url is the only change,
every call below is the same. Points are keyed by our int64 labels and scored by dot product,
so scores equal ExactIndex's (cosine on unit vectors).

`save` writes the usual one-file snapshot (bookkeeping plus every vector). `load` reconnects to
the collection and uses it as it stands when it still holds exactly the saved labels (a server
or a local folder keeps its points); otherwise, as for ":memory:", it uploads the snapshot.
"""

from __future__ import annotations

import numpy as np

from lmstack.retrieve.index import VectorIndex

UPLOAD_BATCH = 1024  # points per upsert request: bounded request size against a server


def _connect(location: str, url: str | None):
    from qdrant_client import QdrantClient

    if url:
        return QdrantClient(url=url)
    return QdrantClient(location=location) if location == ":memory:" else QdrantClient(path=location)


class QdrantIndex(VectorIndex):
    kind = "qdrant"

    def __init__(self, dim: int, location: str = ":memory:", url: str | None = None,
                 collection: str = "lmstack") -> None:
        super().__init__(dim)
        self.location, self.url, self.collection = str(location), url, collection
        self.client = _connect(self.location, url)
        if self.client.collection_exists(collection):
            held = self.client.count(collection).count
            if held:
                self.client.close()
                raise ValueError(f"Qdrant collection {collection!r} already holds {held} "
                                 "points: VectorIndex.load() the index file saved with it, "
                                 "or pick another collection name")
            self.client.delete_collection(collection)
        self._create()

    def _create(self) -> None:
        from qdrant_client import models

        self.client.create_collection(self.collection, vectors_config=models.VectorParams(
            size=self.dim, distance=models.Distance.DOT))

    def close(self) -> None:
        """Release the client (a local folder is locked while a client holds it)."""
        self.client.close()

    def _add(self, labels, vectors):
        from qdrant_client import models

        for i in range(0, len(labels), UPLOAD_BATCH):
            self.client.upsert(self.collection, wait=True, points=models.Batch(
                ids=labels[i:i + UPLOAD_BATCH].tolist(),
                vectors=vectors[i:i + UPLOAD_BATCH].tolist()))

    def _remove(self, labels):
        from qdrant_client import models

        self.client.delete(self.collection, wait=True,
                           points_selector=models.PointIdsList(points=labels.tolist()))

    def _search(self, queries, k, allowed):
        from qdrant_client import models

        where = None
        if allowed is not None:
            where = models.Filter(must=[models.HasIdCondition(has_id=allowed.tolist())])
        answers = self.client.query_batch_points(self.collection, requests=[
            models.QueryRequest(query=q.tolist(), limit=k, filter=where) for q in queries])
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        labels = np.full((len(queries), k), -1, dtype=np.int64)  # -1 pads a short row
        for row, answer in enumerate(answers):
            for col, point in enumerate(answer.points):
                scores[row, col], labels[row, col] = point.score, point.id
        return scores, labels

    def _options(self):
        return {"location": self.location, "url": self.url, "collection": self.collection}

    def _arrays(self):
        labels, vectors, offset = [], [], None
        while True:  # scroll pages through the whole collection
            points, offset = self.client.scroll(self.collection, limit=UPLOAD_BATCH,
                                                offset=offset, with_vectors=True)
            labels += [p.id for p in points]
            vectors += [p.vector for p in points]
            if offset is None:
                break
        return {"vectors": np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim),
                "vector_labels": np.asarray(labels, dtype=np.int64)}

    @classmethod
    def _restore(cls, dim, options, arrays):
        index = cls.__new__(cls)
        VectorIndex.__init__(index, dim)
        index.location, index.url = options["location"], options["url"]
        index.collection = options["collection"]
        index.client = _connect(index.location, index.url)
        labels = arrays["vector_labels"]
        if index.client.collection_exists(index.collection):
            points, _ = index.client.scroll(index.collection, limit=len(labels) + 1)
            if sorted(p.id for p in points) == sorted(labels.tolist()):
                return index  # the collection still holds what was saved: use it as it is
            index.client.delete_collection(index.collection)
        index._create()
        index._add(labels, arrays["vectors"])
        return index
