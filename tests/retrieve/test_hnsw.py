"""Our reference HNSW against exact search on clustered vectors (recall@10), and its layers."""

from __future__ import annotations

import numpy as np
import pytest

from lmstack.retrieve.hnsw import HNSW

N, DIM, QUERIES = 10_000, 32, 100


def clustered(rng, n, dim=DIM, clusters=50, spread=0.4):
    # Clustered, as real embeddings are: uniform random high-dimensional vectors are the worst
    # case for every graph index (faiss and hnswlib reach only 0.05-0.3 recall there).
    centres = rng.standard_normal((clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + spread * rng.standard_normal((n, dim))
    x = x.astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def data():
    x = clustered(np.random.default_rng(0), N + QUERIES)
    base, queries = x[:N], x[N:]
    truth = np.argsort(-(queries @ base.T), axis=1)[:, :10]
    return base, queries, truth


def recall_at_10(index, queries, truth, ef):
    got = [index.search(q, 10, ef=ef)[0] for q in queries]
    return float(np.mean([len(set(g.tolist()) & set(t.tolist())) / 10
                          for g, t in zip(got, truth, strict=True)]))


@pytest.fixture(scope="module")
def built(data):
    index = HNSW(DIM, m=8, ef_construction=40)
    assert index.add(data[0]) == list(range(N))
    return index


def test_recall_against_exact_search(built, data):
    _, queries, truth = data
    assert recall_at_10(built, queries, truth, ef=50) >= 0.95
    nodes, scores = built.search(queries[0], 10, ef=50)
    assert nodes.shape == (10,) and np.all(np.diff(scores) <= 0)


def test_layers_thin_out_geometrically(built):
    # About 1/m of the nodes reach each next layer; layer 0 respects its 2m link budget.
    per_layer = np.bincount([len(layers) - 1 for layers in built.links])
    assert 0.08 < per_layer[1:].sum() / N < 0.18  # ~1/8 above layer 0
    assert max(len(layers[0]) for layers in built.links) <= 2 * built.m
    assert len(built.links[built.entry]) - 1 == built.top_layer


def test_one_way_links_break_recall(data):
    class OneWay(HNSW):  # forgets the reverse links: old nodes never learn of new ones
        def _link(self, node, neighbours, layer):
            self.links[node][layer] = list(neighbours)

    base, queries, _ = data
    broken = OneWay(DIM, m=8, ef_construction=40)
    broken.add(base[:2000])
    truth_2k = np.argsort(-(queries @ base[:2000].T), axis=1)[:, :10]
    assert recall_at_10(broken, queries, truth_2k, ef=50) < 0.5


def test_empty_index_finds_nothing():
    nodes, scores = HNSW(4).search(np.ones(4), 3)
    assert nodes.size == 0 and scores.size == 0
