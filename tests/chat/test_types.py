"""Message and tool-call types round-trip the OpenAI wire format; tool calls parse out of
generated text."""

from __future__ import annotations

import pytest

from lmstack.chat import Message, ToolCall, parse_tool_calls


def test_message_round_trip():
    wire = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}
    assert Message.from_dict(wire).to_dict() == wire
    parts = {"role": "user", "content": [{"type": "text", "text": "a"},
                                         {"type": "text", "text": "b"}]}
    assert Message.from_dict(parts).content == "ab"
    call = ToolCall.from_dict({"function": {"name": "g", "arguments": {"x": 1}}})
    assert call.parsed_arguments() == {"x": 1} and call.id.startswith("call_")
    with pytest.raises(ValueError, match="'h'"):
        ToolCall("h", "{not json").parsed_arguments()


def test_parse_tool_calls():
    text = ('Let me check.\n<tool_call>\n{"name": "weather", "arguments": {"city": "Oslo"}}\n'
            '</tool_call>\n<tool_call>{"name": "time", "arguments": {}}</tool_call>')
    content, calls = parse_tool_calls(text)
    assert content == "Let me check."
    assert [c.name for c in calls] == ["weather", "time"]
    assert calls[0].parsed_arguments() == {"city": "Oslo"}
    # Unterminated (cut by a stop token), bare JSON, and broken blocks.
    assert parse_tool_calls('<tool_call>{"name": "a", "arguments": {}}')[1][0].name == "a"
    assert parse_tool_calls('{"name": "b", "arguments": {"k": 2}}')[1][0].name == "b"
    broken = "<tool_call>{name: oops}</tool_call>"
    assert parse_tool_calls(broken) == (broken, [])
    assert parse_tool_calls("just text") == ("just text", [])
