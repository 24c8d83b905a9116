"""Reading tool calls out of generated text: <tool_call>{"name", "arguments"}</tool_call> blocks.

The Hermes / Qwen2.5 function-calling format, which lmstack's ChatML template also writes; a
reply that is one bare {"name", "arguments"} JSON object counts too (common in small models).
"""

from __future__ import annotations

import json
import re
from typing import Any

from lmstack.chat.types import ToolCall

_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)


def _as_call(payload: str) -> ToolCall | None:
    try:
        obj = json.loads(payload)
    except json.JSONDecodeError:
        return None
    if not isinstance(obj, dict) or not isinstance(obj.get("name"), str):
        return None
    args = obj.get("arguments", obj.get("parameters", {}))
    if not isinstance(args, str):
        args = json.dumps(args, ensure_ascii=False)
    return ToolCall(name=obj["name"], arguments=args)


def split_tool_calls(text: str) -> tuple[str, list[ToolCall]]:
    """(text outside the well-formed blocks, verbatim; their calls). A block that does not
    parse stays in the text, so nothing the model wrote is lost."""
    calls: list[ToolCall] = []
    kept: list[str] = []
    last = 0
    for match in _BLOCK.finditer(text):
        call = _as_call(match.group(1))
        if call is None:
            continue
        calls.append(call)
        kept.append(text[last:match.start()])
        last = match.end()
    kept.append(text[last:])
    return "".join(kept), calls


def parse_tool_calls(text: str) -> tuple[str, list[ToolCall]]:
    """(remaining content, stripped; tool calls). Blocks that do not parse stay in the
    content, so a caller (or the model, on the next turn) can see what went wrong."""
    content, calls = split_tool_calls(text)
    content = content.strip()
    if not calls and content.startswith("{"):
        bare = _as_call(content)
        if bare is not None and "arguments" in content:
            return "", [bare]
    return content, calls


def forced_tools(tools: list[dict[str, Any]] | None, tool_choice: Any
                 ) -> list[dict[str, Any]] | None:
    """The tools one of which a reply must call: all for tool_choice "required", the named
    one for {"type": "function", "function": {"name": ...}}; None when the model may choose."""
    if tool_choice == "required":
        return list(tools or [])
    if isinstance(tool_choice, dict):
        name = (tool_choice.get("function") or {}).get("name")
        return [t for t in tools or [] if tool_name(t) == name]
    return None


def tool_name(tool: dict[str, Any]) -> str | None:
    """The function name of an OpenAI `tools` entry; None when the entry is malformed."""
    fn = tool.get("function") if isinstance(tool, dict) else None
    name = fn.get("name") if isinstance(fn, dict) else None
    return name if isinstance(name, str) else None


def tool_call_schema(tools: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON Schema of a call to one of `tools`: {"name": ..., "arguments": {...}}, each
    tool's parameters shaping its arguments. Guided decoding holds a forced call to it (see
    lmstack.engine.json_guide), so the call always parses."""
    return {"anyOf": [{
        "type": "object", "required": ["name", "arguments"],
        "properties": {"name": {"const": tool_name(t)},
                       "arguments": t["function"].get("parameters") or {"type": "object"}}}
        for t in tools]}


def parse_forced_call(text: str) -> ToolCall | None:
    """A reply decoded under tool_call_schema as a ToolCall; None if it was cut short."""
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    return ToolCall(name=obj["name"], arguments=json.dumps(obj["arguments"], ensure_ascii=False))
