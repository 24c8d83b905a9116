"""Supervised fine-tuning examples: chats through the model's own chat template, a loss mask
over the assistant's tokens only, and packing of several examples into one row.

The prompt part of every example is built by `chat_prompt_ids`, the very function the engine
and the server render inference prompts with, so the model trains on exactly the tokens it
will be prompted with (transformers' `assistant_only_loss` and TRL's `completion_only_loss`
serve the same end; packing as in TRL's `padding_free` with positions restarting per example).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from lmstack.data.chat_records import Chat, RecordError
from lmstack.data.mlm import IGNORE_INDEX
from lmstack.tokenizer.chat_prompt import chat_prompt_ids, encode_chat_prompt, end_of_turn_ids

NO_TOOL_CALLS = ("this tokenizer's chat template does not write tool calls, so tool-call turns "
                 "would train on nothing; use a model whose template does (lmstack's ChatML "
                 "default writes <tool_call>)")


@dataclass
class Example:
    ids: list[int]
    labels: list[int]  # the id where the loss counts (assistant tokens), IGNORE_INDEX elsewhere


def has_targets(example: Example) -> bool:
    return any(label != IGNORE_INDEX for label in example.labels)


def _extend(example: Example, ids: list[int]) -> None:
    """Append what `ids` adds after the example's tokens so far, with no loss on it."""
    if ids[:len(example.ids)] != example.ids:
        raise RecordError("the chat template renders a conversation's earlier turns "
                          "differently once later turns follow, so training text would not "
                          "match inference text; use a prefix-stable template (e.g. ChatML)")
    new = ids[len(example.ids):]
    example.ids += new
    example.labels += [IGNORE_INDEX] * len(new)


def tokenize_chat(tokenizer: Any, chat: Chat, last_turn_only: bool = False) -> Example:
    """Token ids of the whole chat and labels marking each assistant reply (through its
    end-of-turn marker, so the model learns to stop). `last_turn_only`: only the final reply
    (preference pairs judge that one)."""
    ends = set(end_of_turn_ids(tokenizer))
    example = Example([], [])
    turns = [i for i, m in enumerate(chat.messages) if m["role"] == "assistant"]
    if not turns or turns[0] == 0:
        raise RecordError("a training chat needs an assistant reply after at least one message")
    for i in turns[-1:] if last_turn_only else turns:
        prompt = chat_prompt_ids(tokenizer, chat.messages[:i], chat.tools)
        _extend(example, prompt)
        calls = chat.messages[i].get("tool_calls") or []
        try:
            text = tokenizer.apply_chat_template(chat.messages[:i + 1], tools=chat.tools)
        except ValueError:
            if calls:  # e.g. SmolLM2's template reads message['content'], which a call lacks
                raise RecordError(NO_TOOL_CALLS) from None
            raise
        full = encode_chat_prompt(tokenizer, text)
        if full[:len(prompt)] != prompt:
            _extend(example, full)  # raises: the reply changed the prompt's tokens
        reply = full[len(prompt):]
        stop = next((k + 1 for k, t in enumerate(reply) if t in ends), len(reply))
        if calls and calls[0]["function"]["name"] not in tokenizer.decode(reply[:stop]):
            raise RecordError(NO_TOOL_CALLS)
        example.ids += reply
        example.labels += reply[:stop] + [IGNORE_INDEX] * (len(reply) - stop)
    return example


def build_examples(tokenizer: Any, chats: Iterable[Chat], max_len: int) -> list[Example]:
    """Tokenized chats, cut to max_len tokens; chats left with no assistant token are dropped."""
    out = []
    for chat in chats:
        e = tokenize_chat(tokenizer, chat)
        e.ids, e.labels = e.ids[:max_len], e.labels[:max_len]
        e.labels[0] = IGNORE_INDEX  # nothing in the example predicts its first token
        if has_targets(e):
            out.append(e)
    return out


def pack(examples: Sequence[Example], max_len: int) -> list[list[Example]]:
    """Rows of consecutive examples, each row at most max_len tokens (greedy, in order)."""
    rows: list[list[Example]] = []
    used = max_len
    for e in examples:
        if used + len(e.ids) > max_len:
            rows.append([])
            used = 0
        rows[-1].append(e)
        used += len(e.ids)
    return rows


class SFTDataset:
    """Rows for the Trainer: one example each, or several packed (`pack=True`); a batch holds
    input_ids, labels and segment_ids ([B, L], padded to its longest row; segment 0 = padding),
    from which the SFT objective builds its block-diagonal mask."""

    def __init__(self, examples: Sequence[Example], max_len: int, pad_id: int = 0,
                 pack_rows: bool = False):
        if not examples:
            raise RecordError("no training examples left (every chat was empty or cut away "
                              "by max_len)")
        self.rows = pack(examples, max_len) if pack_rows else [[e] for e in examples]
        self.pad_id = pad_id

    def __len__(self) -> int:
        return len(self.rows)

    def tokens(self) -> int:
        return sum(len(e.ids) for row in self.rows for e in row)

    def batch(self, indices: Sequence[int], keys: Sequence[int] | None = None
              ) -> dict[str, torch.Tensor]:
        rows = [self.rows[i] for i in indices]
        L = max(sum(len(e.ids) for e in row) for row in rows)
        ids = torch.full((len(rows), L), self.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), L), IGNORE_INDEX, dtype=torch.long)
        segments = torch.zeros((len(rows), L), dtype=torch.long)
        for b, row in enumerate(rows):
            at = 0
            for s, e in enumerate(row, start=1):
                n = len(e.ids)
                ids[b, at:at + n] = torch.tensor(e.ids)
                labels[b, at:at + n] = torch.tensor(e.labels)
                segments[b, at:at + n] = s
                at += n
        return {"input_ids": ids, "labels": labels, "segment_ids": segments}
