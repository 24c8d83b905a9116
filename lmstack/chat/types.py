"""Chat messages, tool calls and results, shaped like the OpenAI chat-completions API.

Plain dataclasses with `to_dict` / `from_dict` for the wire format, so RAG, agents and the
server share one vocabulary (OpenAI API reference: "chat.completion" objects).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any


class ChatError(RuntimeError):
    """A chat backend refused or failed a request (carries the HTTP status when there is one)."""

    def __init__(self, message: str, status: int | None = None, type: str | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.status, self.type, self.code = status, type, code


@dataclass
class ToolCall:
    """A function the model asks to call; `arguments` is a JSON string, as on the wire."""

    name: str
    arguments: str = "{}"
    id: str = field(default_factory=lambda: f"call_{uuid.uuid4().hex[:24]}")
    type: str = "function"

    def parsed_arguments(self) -> dict[str, Any]:
        """The arguments as a dict; raises ValueError naming the tool if they are not JSON."""
        try:
            value = json.loads(self.arguments or "{}")
        except json.JSONDecodeError as e:
            raise ValueError(f"arguments for tool {self.name!r} are not valid JSON: {e}") from e
        # ValueError, not TypeError: this is bad model output, not a caller's mistake.
        if not isinstance(value, dict):
            raise ValueError(  # noqa: TRY004
                f"arguments for tool {self.name!r} must be a JSON object")
        return value

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "type": self.type,
                "function": {"name": self.name, "arguments": self.arguments}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ToolCall:
        fn = d.get("function", d)
        args = fn.get("arguments", "{}")
        if not isinstance(args, str):
            args = json.dumps(args, ensure_ascii=False)
        kwargs = {"id": d["id"]} if d.get("id") else {}
        return cls(name=fn["name"], arguments=args, type=d.get("type", "function"), **kwargs)


@dataclass
class Message:
    """One turn: role is "system", "user", "assistant" or "tool"."""

    role: str
    content: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None  # on a "tool" message: which call this answers
    name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            d["tool_calls"] = [c.to_dict() for c in self.tool_calls]
        if self.tool_call_id is not None:
            d["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            d["name"] = self.name
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Message:
        content = d.get("content")
        if isinstance(content, list):  # OpenAI content parts: keep the text ones
            content = "".join(p.get("text", "") for p in content if p.get("type") == "text")
        return cls(role=d["role"], content=content,
                   tool_calls=[ToolCall.from_dict(c) for c in d.get("tool_calls") or []],
                   tool_call_id=d.get("tool_call_id"), name=d.get("name"))


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, int]:
        return {"prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "total_tokens": self.total_tokens}


@dataclass
class ChatResult:
    """The assistant's reply: a message (text and/or tool calls), why it ended, token usage."""

    message: Message
    finish_reason: str | None = None  # "stop" | "length" | "tool_calls"
    usage: Usage = field(default_factory=Usage)
    model: str | None = None

    @property
    def content(self) -> str:
        return self.message.content or ""

    @property
    def tool_calls(self) -> list[ToolCall]:
        return self.message.tool_calls


MessageLike = Message | dict[str, Any]


def to_message(m: MessageLike) -> Message:
    return m if isinstance(m, Message) else Message.from_dict(m)


def to_wire(messages: list[MessageLike]) -> list[dict[str, Any]]:
    """Messages as OpenAI JSON dicts (what chat templates and HTTP bodies take)."""
    return [to_message(m).to_dict() for m in messages]


def tool_schema(tool: Any) -> dict[str, Any]:
    """A tool as the API's {"type": "function", "function": {...}} dict.

    Accepts that dict, a bare {"name", "description", "parameters"} dict, or any object with a
    `schema()` / `to_dict()` method returning one of those (e.g. an agent Tool).
    """
    for method in ("schema", "to_dict"):
        if not isinstance(tool, dict) and hasattr(tool, method):
            tool = getattr(tool, method)()
            break
    if not isinstance(tool, dict):
        raise TypeError(f"cannot turn {type(tool).__name__} into a tool schema")
    return tool if "function" in tool else {"type": "function", "function": tool}
