"""A resumable, shard-aware sampler: a seeded permutation per epoch and a cursor into it.

Follows the idea of torch's DistributedSampler (same order on every rank, each rank takes its
slice) but keeps its position as state, so a checkpoint resumes mid-epoch on the same example.
"""

from __future__ import annotations

from typing import Any

import torch


class ResumableSampler:
    """Hands out example indices in a fixed global order; `state_dict` pins the position.

    The order of epoch e is `randperm(n)` under seed + e (or 0..n-1 without shuffling), so it
    is recomputed on resume rather than stored. Every rank holds the same sampler and draws the
    same global indices; the trainer gives each rank its own slice of them.
    """

    def __init__(self, num_items: int, seed: int = 0, shuffle: bool = True):
        if num_items <= 0:
            raise ValueError("the sampler needs at least one item")
        self.num_items, self.seed, self.shuffle = num_items, seed, shuffle
        self.epoch, self.position = 0, 0
        self._order = self._make_order()

    def _make_order(self) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.num_items)
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        return torch.randperm(self.num_items, generator=g)

    @property
    def consumed(self) -> int:
        """How many indices were handed out so far: a rank-independent id for the next one."""
        return self.epoch * self.num_items + self.position

    def take(self, n: int) -> list[int]:
        """The next n indices, rolling into a fresh permutation when an epoch runs out."""
        out: list[int] = []
        while len(out) < n:
            if self.position == self.num_items:
                self.epoch, self.position = self.epoch + 1, 0
                self._order = self._make_order()
            k = min(n - len(out), self.num_items - self.position)
            out += self._order[self.position:self.position + k].tolist()
            self.position += k
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"num_items": self.num_items, "seed": self.seed, "shuffle": self.shuffle,
                "epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["num_items"] != self.num_items:
            raise ValueError(
                f"checkpoint sampled {state['num_items']} sequences but the data now has "
                f"{self.num_items}; resume with the same shards and seq_len")
        self.seed, self.shuffle = state["seed"], state["shuffle"]
        self.epoch, self.position = state["epoch"], state["position"]
        self._order = self._make_order()
