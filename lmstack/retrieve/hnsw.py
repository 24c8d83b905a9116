"""A small, readable HNSW: hierarchical navigable small-world graphs for approximate search.

Malkov & Yashunin, "Efficient and robust approximate nearest neighbor search using Hierarchical
Navigable Small World graphs" (2018); algorithm numbers below are the paper's. The reference
for reading; faiss (retrieve/index.py) is the engine for speed.
"""

from __future__ import annotations

import heapq
import math

import numpy as np


class HNSW:
    """Nodes are 0, 1, 2, ... in insertion order; similarity is the inner product (cosine on
    unit vectors), and the graph works on distance = -similarity.

    m: links per node on upper layers (2m on layer 0, which holds every node);
    ef_construction: candidate list width while inserting; ef_search: while searching.
    """

    def __init__(self, dim: int, m: int = 16, ef_construction: int = 100, ef_search: int = 50,
                 seed: int = 0) -> None:
        self.dim, self.m, self.ef_construction, self.ef_search = dim, m, ef_construction, ef_search
        self.max_links = (2 * m, m)  # layer 0, then every layer above it
        self.level_mult = 1 / math.log(m)  # the paper's m_L: ~1/m of the nodes reach each layer up
        self.rng = np.random.default_rng(seed)
        self.vectors = np.zeros((0, dim), dtype=np.float32)
        self.links: list[list[list[int]]] = []  # node -> layer -> neighbour nodes
        self.entry: int | None = None
        self.top_layer = -1

    def __len__(self) -> int:
        return len(self.links)

    def _distances(self, q: np.ndarray, nodes: list[int]) -> np.ndarray:
        return -(self.vectors[nodes] @ q)

    def _max_links(self, layer: int) -> int:
        return self.max_links[min(layer, 1)]

    def search_layer(self, q: np.ndarray, entries: list[int], ef: int,
                     layer: int) -> list[tuple[float, int]]:
        """Algorithm 2: best-first search of one layer from `entries`; returns the ef nearest
        found as (distance, node), nearest first."""
        dist = self._distances(q, entries)
        visited = set(entries)
        candidates = [(float(d), e) for d, e in zip(dist, entries, strict=True)]
        heapq.heapify(candidates)                       # nearest unexpanded first
        found = [(-d, e) for d, e in candidates]        # max-heap of the ef best: farthest on top
        heapq.heapify(found)
        while len(found) > ef:
            heapq.heappop(found)
        while candidates:
            d, c = heapq.heappop(candidates)
            if d > -found[0][0]:
                break  # nearer than every candidate left is the worst kept result: stop
            fresh = [n for n in self.links[c][layer] if n not in visited]
            if not fresh:
                continue
            visited.update(fresh)
            for dn, n in zip(self._distances(q, fresh).tolist(), fresh, strict=True):
                if len(found) < ef or dn < -found[0][0]:
                    heapq.heappush(candidates, (dn, n))
                    heapq.heappush(found, (-dn, n))
                    if len(found) > ef:
                        heapq.heappop(found)
        return sorted((-d, n) for d, n in found)

    def select_neighbours(self, candidates: list[tuple[float, int]], m: int) -> list[int]:
        """Algorithm 4 (the heuristic): walk candidates nearest first and keep one only if it
        is nearer to the new node than to every neighbour kept so far. Links then point in
        different directions, which keeps clusters connected to each other. Pruned
        candidates fill any places left (the paper's keepPrunedConnections)."""
        kept: list[int] = []
        pruned: list[int] = []
        for d, c in candidates:
            if len(kept) >= m:
                break
            if not kept or d < self._distances(self.vectors[c], kept).min():
                kept.append(c)
            else:
                pruned.append(c)
        return kept + pruned[:m - len(kept)]

    def _link(self, node: int, neighbours: list[int], layer: int) -> None:
        """Connect both ways; a neighbour over its link budget re-selects its own links."""
        self.links[node][layer] = list(neighbours)
        limit = self._max_links(layer)
        for n in neighbours:
            links = self.links[n][layer]
            links.append(node)
            if len(links) > limit:
                dist = self._distances(self.vectors[n], links)
                ranked = sorted(zip(dist.tolist(), links, strict=True))
                self.links[n][layer] = self.select_neighbours(ranked, limit)

    def add(self, vectors: np.ndarray) -> list[int]:
        """Algorithm 1, once per vector; returns the new nodes."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        first = len(self)
        self.vectors = np.concatenate([self.vectors, vectors])
        for node in range(first, len(self.vectors)):
            self._insert(node)
        return list(range(first, len(self.vectors)))

    def _insert(self, node: int) -> None:
        q = self.vectors[node]
        # A geometric draw: each layer up holds a fraction 1/m of the one below.
        level = int(-math.log(1.0 - self.rng.random()) * self.level_mult)
        self.links.append([[] for _ in range(level + 1)])
        if self.entry is None:
            self.entry, self.top_layer = node, level
            return
        entries = [self.entry]
        # Above the new node's level: greedy descent (ef = 1) to a good starting point.
        for layer in range(self.top_layer, level, -1):
            entries = [self.search_layer(q, entries, 1, layer)[0][1]]
        for layer in range(min(level, self.top_layer), -1, -1):
            found = self.search_layer(q, entries, self.ef_construction, layer)
            self._link(node, self.select_neighbours(found, self.m), layer)
            entries = [n for _, n in found]
        if level > self.top_layer:
            self.entry, self.top_layer = node, level

    def search(self, query: np.ndarray, k: int = 10,
               ef: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Algorithm 5: (nodes, similarities) of the approximate k nearest, best first."""
        if self.entry is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        q = np.asarray(query, dtype=np.float32)
        entries = [self.entry]
        for layer in range(self.top_layer, 0, -1):
            entries = [self.search_layer(q, entries, 1, layer)[0][1]]
        found = self.search_layer(q, entries, max(ef or self.ef_search, k), 0)[:k]
        return (np.array([n for _, n in found], dtype=np.int64),
                np.array([-d for d, _ in found], dtype=np.float32))
