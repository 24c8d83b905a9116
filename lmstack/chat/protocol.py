"""The ChatModel protocol: the one seam through which RAG and agents talk to a language model.

Mirrors the OpenAI chat-completions call (messages, tools, sampling keywords), so the
in-process engine and any OpenAI-compatible HTTP server are interchangeable.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol, runtime_checkable

from lmstack.chat.types import ChatResult, MessageLike


@runtime_checkable
class ChatModel(Protocol):
    """chat() returns the whole reply; stream() yields its text as it is generated.

    `sampling` takes OpenAI's names: max_tokens, temperature, top_p, stop, seed,
    presence_penalty, frequency_penalty (implementations may accept more, e.g. top_k).
    """

    def chat(self, messages: Sequence[MessageLike], tools: Sequence[Any] | None = None,
             **sampling: Any) -> ChatResult: ...

    def stream(self, messages: Sequence[MessageLike], tools: Sequence[Any] | None = None,
               **sampling: Any) -> Iterator[str]: ...
