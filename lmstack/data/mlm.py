"""BERT pretraining data: the 80/10/10 masked-LM corruption and next-sentence-prediction pairs.

Follows Devlin et al. 2019 (section 3.1 and appendix A) and google-research/bert's
create_pretraining_data.py, with RoBERTa's dynamic masking (a fresh mask every time a
sequence is drawn, seeded so that a resumed or distributed run draws the same one).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

IGNORE_INDEX = -100  # the label cross_entropy skips: positions that were not selected


def mask_tokens(
    input_ids: Tensor,
    mask_token_id: int,
    vocab_size: int,
    special_mask: Tensor | None = None,
    mlm_probability: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """(corrupted inputs, labels): select `mlm_probability` of the non-special tokens; of
    those, 80% become [MASK], 10% a random token, 10% stay as they are.

    Labels hold the original id at selected positions and IGNORE_INDEX elsewhere. Keeping 10%
    unchanged and 10% random stops the model from learning that only [MASK] needs predicting,
    since [MASK] never appears at fine-tuning time.
    """
    labels = input_ids.clone()
    probs = torch.full(input_ids.shape, mlm_probability)
    if special_mask is not None:
        probs.masked_fill_(special_mask.bool(), 0.0)
    selected = torch.bernoulli(probs, generator=generator).bool()
    labels[~selected] = IGNORE_INDEX
    inputs = input_ids.clone()
    to_mask = torch.bernoulli(torch.full(inputs.shape, 0.8), generator=generator).bool()
    to_mask &= selected
    inputs[to_mask] = mask_token_id
    # Half of the remaining 20% is random: 0.5 here, not 0.1, because 80% are already taken.
    to_random = torch.bernoulli(torch.full(inputs.shape, 0.5), generator=generator).bool()
    to_random &= selected & ~to_mask
    inputs[to_random] = torch.randint(vocab_size, inputs.shape, generator=generator)[to_random]
    return inputs, labels


@dataclass
class SpecialIds:
    cls: int
    sep: int
    mask: int
    pad: int
    vocab_size: int

    @classmethod
    def from_tokenizer(cls, tokenizer: Any) -> SpecialIds:
        ids = {k: getattr(tokenizer, f"{k}_token_id") for k in ("cls", "sep", "mask", "pad")}
        missing = [k for k, v in ids.items() if v is None]
        if missing:
            raise ValueError(f"MLM needs a tokenizer with {', '.join(missing)} tokens "
                             "(a BERT WordPiece tokenizer has them)")
        return cls(**ids, vocab_size=len(tokenizer))


def _mask_rows(ids: Tensor, special: Tensor, sp: SpecialIds, p: float, seed: int,
               keys: Sequence[int]) -> tuple[Tensor, Tensor]:
    """Mask each row with its own generator, keyed by the row's global draw number."""
    inputs, labels = [], []
    for row, special_row, key in zip(ids, special, keys, strict=True):
        g = torch.Generator().manual_seed(seed * 1_000_003 + int(key))
        x, y = mask_tokens(row, sp.mask, sp.vocab_size, special_row, p, g)
        inputs.append(x)
        labels.append(y)
    return torch.stack(inputs), torch.stack(labels)


class MLMSequences:
    """[CLS] window [SEP] rows cut from a token stream, masked freshly at each draw."""

    def __init__(self, tokens: np.ndarray, seq_len: int, special: SpecialIds,
                 mlm_probability: float = 0.15, seed: int = 0):
        self.tokens, self.seq_len, self.special = np.asarray(tokens), seq_len, special
        self.p, self.seed = mlm_probability, seed
        self.body = seq_len - 2
        if len(self.tokens) < self.body:
            raise ValueError(f"not enough tokens for one sequence of {seq_len}")

    def __len__(self) -> int:
        return len(self.tokens) // self.body

    def batch(self, indices: Sequence[int], keys: Sequence[int]) -> dict[str, Tensor]:
        sp = self.special
        rows = [np.concatenate([[sp.cls], self.tokens[i * self.body:(i + 1) * self.body],
                                [sp.sep]]) for i in indices]
        ids = torch.from_numpy(np.stack(rows).astype(np.int64))
        special = (ids == sp.cls) | (ids == sp.sep)
        inputs, labels = _mask_rows(ids, special, sp, self.p, self.seed, keys)
        return {"input_ids": inputs, "attention_mask": torch.ones_like(inputs),
                "token_type_ids": torch.zeros_like(inputs), "labels": labels}


_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|(?<=[。！？])")


def split_sentences(text: str) -> list[str]:
    """Rough sentence cut at ., !, ? (and Chinese 。！？); good enough to form NSP segments."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def build_nsp_examples(
    documents: Sequence[Sequence[Sequence[int]]],
    max_len: int,
    seed: int = 0,
    short_seq_prob: float = 0.1,
) -> list[tuple[list[int], list[int], int]]:
    """(segment A, segment B, label) triples from documents given as lists of sentence ids.

    As in BERT's create_pretraining_data: sentences are gathered into a chunk of about
    max_len - 3 tokens, cut at a random sentence boundary into A and B; half the time B is
    replaced by text from a random other document (label 1, "not next"; 0 means "is next",
    the transformers convention). Unused sentences go back to be used by the next chunk.
    """
    rng = random.Random(seed)
    budget = max_len - 3  # [CLS] A [SEP] B [SEP]
    docs = [[list(s) for s in d if len(s)] for d in documents]
    docs = [d for d in docs if d]
    if len(docs) < 2:
        raise ValueError("NSP needs at least two documents to draw random next segments from")
    examples = []
    for d_idx, doc in enumerate(docs):
        # Occasionally shorter targets, so the model also sees short inputs at fine-tune time.
        target = rng.randint(2, budget) if rng.random() < short_seq_prob else budget
        chunk: list[list[int]] = []
        length, i = 0, 0
        while i < len(doc):
            chunk.append(doc[i])
            length += len(doc[i])
            if i == len(doc) - 1 or length >= target:
                if len(chunk) >= 2 or rng.random() < 0.5:
                    a_end = rng.randint(1, max(1, len(chunk) - 1))
                    a = [t for s in chunk[:a_end] for t in s]
                    if len(chunk) == 1 or rng.random() < 0.5:
                        label = 1
                        other = docs[rng.choice([k for k in range(len(docs)) if k != d_idx])]
                        start = rng.randrange(len(other))
                        b = [t for s in other[start:] for t in s][:max(1, target - len(a))]
                        i -= len(chunk) - a_end  # give back the sentences B did not use
                    else:
                        label = 0
                        b = [t for s in chunk[a_end:] for t in s]
                    a, b = _truncate_pair(a, b, budget, rng)
                    if a and b:
                        examples.append((a, b, label))
                chunk, length = [], 0
                target = rng.randint(2, budget) if rng.random() < short_seq_prob else budget
            i += 1
    return examples


def _truncate_pair(a: list[int], b: list[int], budget: int, rng: random.Random):
    """Trim the longer segment, from a random end, until both fit (BERT's truncate_seq_pair)."""
    a, b = list(a), list(b)
    while len(a) + len(b) > budget:
        longer = a if len(a) > len(b) else b
        longer.pop(0 if rng.random() < 0.5 else -1)
    return a, b


class NSPPairs:
    """Padded [CLS] A [SEP] B [SEP] rows with segment ids, NSP labels, and dynamic MLM masks."""

    def __init__(self, examples: list[tuple[list[int], list[int], int]], seq_len: int,
                 special: SpecialIds, mlm_probability: float = 0.15, seed: int = 0):
        self.examples, self.seq_len, self.special = examples, seq_len, special
        self.p, self.seed = mlm_probability, seed

    def __len__(self) -> int:
        return len(self.examples)

    def batch(self, indices: Sequence[int], keys: Sequence[int]) -> dict[str, Tensor]:
        sp, T = self.special, self.seq_len
        ids = torch.full((len(indices), T), sp.pad, dtype=torch.long)
        types = torch.zeros_like(ids)
        for r, i in enumerate(indices):
            a, b, _ = self.examples[int(i)]
            row = [sp.cls, *a, sp.sep, *b, sp.sep][:T]
            ids[r, :len(row)] = torch.tensor(row)
            types[r, len(a) + 2:len(row)] = 1
        attention = (ids != sp.pad).long()
        special = (ids == sp.cls) | (ids == sp.sep) | (attention == 0)
        inputs, labels = _mask_rows(ids, special, sp, self.p, self.seed, keys)
        nsp = torch.tensor([self.examples[int(i)][2] for i in indices])
        return {"input_ids": inputs, "attention_mask": attention, "token_type_ids": types,
                "labels": labels, "next_sentence_label": nsp}
