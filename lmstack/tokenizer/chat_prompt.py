"""A chat prompt for generation: messages (+ tools) through the template, then token ids; and
the end-of-turn markers generation stops at. One home for the server and the in-process chat.

Follows transformers' `apply_chat_template(add_generation_prompt=True)` convention.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# Chat templates close the assistant's turn with one of these, which is often not the
# tokenizer's eos (our BPE: eos <|endoftext|>, ChatML turns end with <|im_end|>).
END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>")


def end_of_turn_ids(tokenizer: Any) -> list[int]:
    """Ids of the end-of-turn markers this tokenizer knows; generation stops at any of them."""
    lookup = getattr(tokenizer, "token_to_id", None)
    found = [lookup(t) for t in END_OF_TURN_TOKENS] if lookup else []
    return [int(i) for i in found if i is not None]


def render_chat_prompt(tokenizer: Any, messages: Sequence[Mapping[str, Any]],
                       tools: Sequence[Mapping[str, Any]] | None = None) -> str:
    """The conversation as text, ending where the assistant's reply begins."""
    return tokenizer.apply_chat_template(list(messages), add_generation_prompt=True,
                                         tokenize=False, tools=tools)


def encode_chat_prompt(tokenizer: Any, text: str) -> list[int]:
    # The template already wrote every special token it wants; adding BOS again would double it.
    return tokenizer.encode(text, add_special_tokens=False)


def chat_prompt_ids(tokenizer: Any, messages: Sequence[Mapping[str, Any]],
                    tools: Sequence[Mapping[str, Any]] | None = None) -> list[int]:
    """Token ids of the rendered conversation, ready to generate the assistant's reply."""
    return encode_chat_prompt(tokenizer, render_chat_prompt(tokenizer, messages, tools))
