"""Preference pairs for DPO and ORPO: the prompt through the chat template once, then the
chosen and the rejected reply, with the loss mask on the reply's tokens only.

Follows TRL's batch layout for pairs (all chosen rows first, then all rejected rows), so one
forward pass scores both and `chunk(2)` splits them again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from lmstack.data.chat_records import Chat, PreferencePair, RecordError
from lmstack.data.mlm import IGNORE_INDEX
from lmstack.data.sft import Example, has_targets, tokenize_chat


def tokenize_pair(tokenizer, pair: PreferencePair, max_len: int) -> tuple[Example, Example]:
    """(chosen, rejected) examples, each cut to max_len tokens, loss on the final reply."""
    out = []
    for reply in (pair.chosen, pair.rejected):
        chat = Chat([*pair.prompt.messages, reply], pair.prompt.tools)
        e = tokenize_chat(tokenizer, chat, last_turn_only=True)
        out.append(Example(e.ids[:max_len], e.labels[:max_len]))
    return out[0], out[1]


class PreferenceDataset:
    """Batches of pairs: input_ids and labels [2B, L] (chosen rows, then rejected rows; right
    padded), plus reference_logps [2B] once `reference` holds precomputed ones ([N, 2])."""

    def __init__(self, tokenizer, pairs: Iterable[PreferencePair], max_len: int,
                 pad_id: int = 0):
        self.pairs = []
        for pair in pairs:
            chosen, rejected = tokenize_pair(tokenizer, pair, max_len)
            if not (has_targets(chosen) and has_targets(rejected)):
                continue  # a reply cut away entirely by max_len: nothing to compare
            self.pairs.append((chosen, rejected))
        if not self.pairs:
            raise RecordError("no preference pairs left (every reply was cut away by max_len)")
        self.pad_id = pad_id
        self.reference: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.pairs)

    def batch(self, indices: Sequence[int], keys: Sequence[int] | None = None
              ) -> dict[str, torch.Tensor]:
        rows = [self.pairs[i][0] for i in indices] + [self.pairs[i][1] for i in indices]
        L = max(len(e.ids) for e in rows)
        ids = torch.full((len(rows), L), self.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), L), IGNORE_INDEX, dtype=torch.long)
        for b, e in enumerate(rows):
            ids[b, :len(e.ids)] = torch.tensor(e.ids)
            labels[b, :len(e.labels)] = torch.tensor(e.labels)
        out = {"input_ids": ids, "labels": labels}
        if self.reference is not None:
            picked = self.reference[list(indices)]  # [B, 2]
            out["reference_logps"] = torch.cat([picked[:, 0], picked[:, 1]])
        return out
