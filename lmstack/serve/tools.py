"""Tool calls in generated text (`<tool_call>{"name", "arguments"}</tool_call>`) -> OpenAI's
structured `tool_calls`. Follows the Hermes/Qwen2.5 format that our ChatML template teaches."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

OPEN, CLOSE = "<tool_call>", "</tool_call>"
# An unclosed call at the very end counts too: generation may stop on <|im_end|> first.
CALL = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|\Z)", re.DOTALL)


def _as_call(body: str) -> dict[str, Any] | None:
    try:
        obj = json.loads(body)
    except ValueError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return None
    args = obj.get("arguments", {})
    # OpenAI sends arguments as a JSON string, which clients json.loads themselves.
    return {"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
            "function": {"name": obj["name"], "arguments": args if isinstance(args, str)
                         else json.dumps(args, ensure_ascii=False)}}


def parse_tool_calls(text: str) -> tuple[str, list[dict[str, Any]]]:
    """(text outside the well-formed calls, the calls). A malformed call stays in the text,
    so nothing the model wrote is lost."""
    calls, kept, last = [], [], 0
    for m in CALL.finditer(text):
        call = _as_call(m.group(1))
        if call is None:
            continue
        calls.append(call)
        kept.append(text[last:m.start()])
        last = m.end()
    kept.append(text[last:])
    return "".join(kept), calls


class ToolCallStream:
    """Splits a streamed reply: text before a `<tool_call>` streams as content at once; from
    the marker on it is held and parsed when the reply ends."""

    def __init__(self) -> None:
        self.pending = ""  # a tail that might be the start of "<tool_call>"
        self.held: str | None = None  # everything from the first marker on

    def feed(self, delta: str) -> str:
        """The part of `delta` that is safe to stream as content now."""
        if self.held is not None:
            self.held += delta
            return ""
        text = self.pending + delta
        at = text.find(OPEN)
        if at >= 0:
            self.held, self.pending = text[at:], ""
            return text[:at]
        keep = next((k for k in range(min(len(OPEN) - 1, len(text)), 0, -1)
                     if OPEN.startswith(text[-k:])), 0)
        self.pending = text[len(text) - keep:] if keep else ""
        return text[:len(text) - keep]

    def finish(self) -> tuple[str, list[dict[str, Any]]]:
        """(content still to send, parsed calls) once the reply is complete."""
        if self.held is None:
            return self.pending, []
        content, calls = parse_tool_calls(self.held)
        return content, calls
