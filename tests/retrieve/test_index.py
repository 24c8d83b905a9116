"""The VectorIndex interface, one test body for every backend (exact, faiss, Qdrant's in-process
mode); faiss and Qdrant agree with exact search."""

from __future__ import annotations

import numpy as np
import pytest

from lmstack.retrieve.index import ExactIndex, FaissIndex, VectorIndex
from lmstack.retrieve.qdrant import QdrantIndex

BACKENDS = {
    "exact": lambda dim: ExactIndex(dim),
    "faiss-hnsw": lambda dim: FaissIndex(dim, method="hnsw", m=16),
    "faiss-flat": lambda dim: FaissIndex(dim, method="flat"),
    "qdrant": lambda dim: QdrantIndex(dim),  # ":memory:"; url="http://..." for a server
}


def unit(rng, n, dim=16):
    x = rng.standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(params=list(BACKENDS))
def make(request):
    return BACKENDS[request.param]


def test_interface(make, tmp_path):
    rng = np.random.default_rng(0)
    x = unit(rng, 50)
    ids = [f"doc{i}" for i in range(50)]
    index = make(16)
    index.add(ids, x, [{"lang": "en" if i % 2 else "zh", "n": i} for i in range(50)])
    assert len(index) == 50 and "doc7" in index

    hits = index.search(x[7], k=3)
    assert hits[0].id == "doc7" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[0].metadata == {"lang": "en", "n": 7}
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)

    # Filters: a dict (a list means any of), or a callable on the metadata.
    assert all(h.metadata["lang"] == "zh" for h in index.search(x[7], 5, {"lang": "zh"}))
    assert {h.id for h in index.search(x[7], 5, {"n": [3, 4]})} == {"doc3", "doc4"}
    assert [h.id for h in index.search(x[7], 5, lambda m: m["n"] == 9)] == ["doc9"]
    assert index.search(x[7], 5, {"lang": "fr"}) == []

    with pytest.raises(KeyError, match="upsert"):
        index.add(["doc7"], x[:1])
    index.upsert(["doc7"], -x[7:8], [{"lang": "en", "n": 70}])  # now farthest from x[7]
    assert len(index) == 50
    assert index.search(-x[7], 1)[0].metadata["n"] == 70
    assert "doc7" not in {h.id for h in index.search(x[7], 10)}

    assert index.delete(["doc8", "doc9", "missing"]) == 2
    assert len(index) == 48
    assert not {"doc8", "doc9"} & {h.id for h in index.search(x[8], 10)}
    assert len(index.search(x[0], 100)) == 48  # k past the size: every live entry once

    path = tmp_path / "index.npz"
    index.save(path)
    again = VectorIndex.load(path)
    assert type(again) is type(index) and len(again) == 48
    for q in (x[0], x[8], -x[7]):
        assert index.search(q, 5) == again.search(q, 5)
    again.add(["new"], x[8:9])  # labels continue after the saved ones: nothing collides
    assert again.search(x[8], 1)[0].id == "new"


def test_a_failed_save_leaves_the_old_file(make, tmp_path, monkeypatch):
    index = make(16)
    index.add([1, 2], unit(np.random.default_rng(1), 2))
    path = tmp_path / "index.npz"
    index.save(path)
    before = path.read_bytes()
    index.add([3], unit(np.random.default_rng(2), 1))

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        index.save(path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "index.npz"]
    assert len(VectorIndex.load(path)) == 2


@pytest.mark.parametrize("backend", ["faiss-hnsw", "faiss-flat", "qdrant"])
def test_results_equal_exact(backend):
    rng = np.random.default_rng(3)
    x, queries = unit(rng, 500, 32), unit(rng, 20, 32)
    exact = ExactIndex(32)
    ann = {"faiss-hnsw": lambda: FaissIndex(32, method="hnsw", ef_search=200),
           "faiss-flat": lambda: FaissIndex(32, method="flat"),
           "qdrant": lambda: QdrantIndex(32)}[backend]()
    for index in (exact, ann):
        index.add(list(range(500)), x)
    for q in queries:
        want, got = exact.search(q, 10), ann.search(q, 10)
        assert [h.id for h in got] == [h.id for h in want]
        np.testing.assert_allclose([h.score for h in got], [h.score for h in want], atol=1e-5)


def test_exact_search_is_exact():
    # The yardstick itself, against a sort over every score: a wrong top-k would fail here.
    rng = np.random.default_rng(4)
    x, q = unit(rng, 300), unit(rng, 1)[0]
    index = ExactIndex(16)
    index.add(list(range(300)), x)
    assert [h.id for h in index.search(q, 7)] == np.argsort(-(x @ q))[:7].tolist()


def test_a_wrong_metric_breaks_the_agreement():
    # The classic slip: an L2 faiss index where scores should be inner products. On vectors of
    # unequal length the rankings differ, so test_results_equal_exact would catch it.
    import faiss

    rng = np.random.default_rng(5)
    x = unit(rng, 500, 32) * rng.uniform(0.2, 3.0, (500, 1)).astype(np.float32)
    q = unit(rng, 20, 32)
    exact = ExactIndex(32)
    exact.add(list(range(500)), x)
    wrong = FaissIndex(32, method="flat")
    wrong._faiss = faiss.IndexIDMap2(faiss.IndexFlatL2(32))
    wrong.add(list(range(500)), x)
    differ = sum([h.id for h in exact.search(v, 10)] != [h.id for h in wrong.search(v, 10)]
                 for v in q)
    assert differ >= 15


def test_qdrant_folder_keeps_its_points_across_a_reopen(tmp_path, monkeypatch):
    # Local on-disk mode stands in for a server: load() reconnects to the collection it finds
    # holding the saved points instead of uploading them again.
    x = unit(np.random.default_rng(6), 20)
    index = QdrantIndex(16, location=str(tmp_path / "qdrant"), collection="kb")
    index.add([f"d{i}" for i in range(20)], x, [{"n": i} for i in range(20)])
    index.delete(["d3"])
    index.save(tmp_path / "kb.npz")
    index.close()
    with pytest.raises(ValueError, match="already holds 19 points"):
        QdrantIndex(16, location=str(tmp_path / "qdrant"), collection="kb")

    uploads = []
    real_add = QdrantIndex._add
    monkeypatch.setattr(QdrantIndex, "_add", lambda self, *a: uploads.append(a) or real_add(self, *a))
    again = VectorIndex.load(tmp_path / "kb.npz")
    assert uploads == [] and len(again) == 19
    assert again.search(x[5], 1)[0].id == "d5" and "d3" not in again
    assert again.client.count("kb").count == 19
    again.close()
