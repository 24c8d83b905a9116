"""A scripted ChatModel for the agent-loop tests: recorded replies, and what it was sent."""

from __future__ import annotations

import copy
from collections.abc import Iterator

from lmstack.chat.types import ChatResult, Message, ToolCall, Usage


class Scripted:
    """Replies from a list, in order (strings become assistant messages), each reporting
    `tokens_per_reply` tokens; records the messages, tools and sampling of every call."""

    def __init__(self, replies: list[Message | str], tokens_per_reply: int = 10):
        self.replies = [Message("assistant", r) if isinstance(r, str) else r for r in replies]
        self.tokens_per_reply = tokens_per_reply
        self.seen: list[list[Message]] = []
        self.tools_seen: list = []
        self.sampling_seen: list[dict] = []

    def chat(self, messages, tools=None, **sampling) -> ChatResult:
        self.seen.append(copy.deepcopy(list(messages)))
        self.tools_seen.append(tools)
        self.sampling_seen.append(sampling)
        message = self.replies.pop(0)
        return ChatResult(message, "tool_calls" if message.tool_calls else "stop",
                          Usage(self.tokens_per_reply - 1, 1))

    def stream(self, messages, tools=None, **sampling) -> Iterator[str]:
        yield self.chat(messages, tools, **sampling).content


def call(name: str, arguments: str, id: str = "c1") -> Message:
    return Message("assistant", None, [ToolCall(name, arguments, id=id)])
