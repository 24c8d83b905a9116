"""Tool calls in generated text (`<tool_call>{"name", "arguments"}</tool_call>`) -> OpenAI's
structured `tool_calls`, whole or streamed. Follows the Hermes/Qwen2.5 format of our ChatML.
"""

from __future__ import annotations

from typing import Any

from lmstack.chat.tool_calls import parse_forced_call, parse_tool_calls

OPEN = "<tool_call>"


def wire_tool_calls(text: str) -> tuple[str, list[dict[str, Any]]]:
    """(content, the calls as OpenAI `tool_calls` items). The parsing is `lmstack.chat`'s, the
    one the in-process ChatModel uses, so a reply reads the same over HTTP and in process."""
    content, calls = parse_tool_calls(text)
    return content, [call.to_dict() for call in calls]


class ToolCallStream:
    """Splits a streamed reply: text before a `<tool_call>` streams as content at once; from
    the marker on it is held and parsed when the reply ends. Trailing whitespace is held too,
    so the streamed content equals the whole reply's (which is stripped around the calls)."""

    def __init__(self) -> None:
        self.pending = ""  # a tail that might be the start of "<tool_call>", or whitespace
        self.held: str | None = None  # everything from the first marker on
        self.gap = ""  # whitespace just before the marker: sent only if content follows

    def feed(self, delta: str) -> str:
        """The part of `delta` that is safe to stream as content now."""
        if self.held is not None:
            self.held += delta
            return ""
        text = self.pending + delta
        at = text.find(OPEN)
        if at >= 0:
            before = text[:at].rstrip()
            self.held, self.gap, self.pending = text[at:], text[len(before):at], ""
            return before
        keep = next((k for k in range(min(len(OPEN) - 1, len(text)), 0, -1)
                     if OPEN.startswith(text[-k:])), 0)
        safe = len(text[:len(text) - keep].rstrip())
        self.pending = text[safe:]
        return text[:safe]

    def finish(self) -> tuple[str, list[dict[str, Any]]]:
        """(content still to send, parsed calls) once the reply is complete."""
        if self.held is None:
            return self.pending, []
        content, calls = wire_tool_calls(self.held)
        return (self.gap + content if content else ""), calls



def forced_tool_call(text: str) -> dict[str, Any] | None:
    """A guided reply (see lmstack.chat.tool_calls.tool_call_schema) as an OpenAI `tool_calls`
    item; None when it is not a whole call (it was cut short by max_tokens)."""
    call = parse_forced_call(text)
    return call.to_dict() if call is not None else None
