"""tool_choice required / named and response_format json_schema through the official openai
client against the live server's random tiny model: guided decoding makes every forced call
and every JSON reply valid for its schema, streamed or not."""

from __future__ import annotations

import json

import jsonschema
import openai
import pytest

# Small on purpose: the tiny model's 400-token BPE spends 442 of its 512 positions on this
# prompt with both tools, and a call must fit in the rest (numbers are tested in the engine's
# guided-decoding tests).
CHAT = [{"role": "user", "content": "Weather in Paris?"}]
WEATHER = {"type": "object", "required": ["city", "unit"], "properties": {
    "city": {"type": "string", "maxLength": 6}, "unit": {"enum": ["c", "f"]}}}
CONVERT = {"type": "object", "required": ["value", "to"], "properties": {
    "value": {"enum": [1, 3, 10]}, "to": {"enum": ["mi", "km"]}}}
TOOLS = [{"type": "function", "function": {"name": "weather", "parameters": WEATHER}},
         {"type": "function", "function": {"name": "convert", "parameters": CONVERT}}]
SCHEMAS = {"weather": WEATHER, "convert": CONVERT}


def check_call(call) -> str:
    args = json.loads(call.function.arguments)
    jsonschema.validate(args, SCHEMAS[call.function.name])
    return call.function.name


@pytest.mark.parametrize("seed", range(3))
def test_required_and_named_tool_choice_always_give_a_valid_call(client, seed):
    required = client.chat.completions.create(
        model="tiny", messages=CHAT, tools=TOOLS, tool_choice="required", max_tokens=64,
        temperature=1.0, seed=seed)
    choice = required.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert check_call(choice.message.tool_calls[0]) in SCHEMAS
    named = client.chat.completions.create(
        model="tiny", messages=CHAT, tools=TOOLS, max_tokens=64, temperature=1.0, seed=seed,
        tool_choice={"type": "function", "function": {"name": "convert"}})
    assert check_call(named.choices[0].message.tool_calls[0]) == "convert"


def test_a_forced_call_streams_as_one_tool_calls_delta(client):
    kwargs = {"model": "tiny", "messages": CHAT, "tools": TOOLS, "max_tokens": 64,
              "temperature": 0,
              "tool_choice": {"type": "function", "function": {"name": "weather"}}}
    whole = client.chat.completions.create(**kwargs).choices[0].message.tool_calls[0]
    chunks = list(client.chat.completions.create(stream=True, **kwargs))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    calls = [d.tool_calls[0] for d in deltas if d.tool_calls]
    assert len(calls) == 1 and not any(d.content for d in deltas)
    assert (calls[0].function.name, calls[0].function.arguments) == (
        whole.function.name, whole.function.arguments)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_json_schema_response_format_parses_and_matches(client):
    fmt = {"type": "json_schema", "json_schema": {"name": "weather", "schema": WEATHER}}
    for seed in range(3):
        reply = client.chat.completions.create(model="tiny", messages=CHAT, max_tokens=64,
                                               temperature=1.0, seed=seed, response_format=fmt)
        jsonschema.validate(json.loads(reply.choices[0].message.content), WEATHER)
    obj = client.chat.completions.create(model="tiny", messages=CHAT, max_tokens=200,
                                         temperature=0, response_format={"type": "json_object"})
    if obj.choices[0].finish_reason == "stop":  # a free object may run to max_tokens
        assert isinstance(json.loads(obj.choices[0].message.content), dict)


def test_bad_tool_choices_are_400s(client):
    with pytest.raises(openai.BadRequestError, match="not in tools"):
        client.chat.completions.create(model="tiny", messages=CHAT, tools=TOOLS,
                                       tool_choice={"type": "function",
                                                    "function": {"name": "nope"}})
    with pytest.raises(openai.BadRequestError, match="properties must be an object"):
        client.chat.completions.create(
            model="tiny", messages=CHAT, response_format={"type": "json_schema", "json_schema": {
                "name": "x", "schema": {"type": "object", "properties": 5}}})
    with pytest.raises(openai.BadRequestError, match="each tool must look like"):
        client.chat.completions.create(model="tiny", messages=CHAT, tool_choice="required",
                                       tools=[{"type": "function", "function": "weather"}])
    with pytest.raises(openai.BadRequestError, match="not supported for guided"):
        client.chat.completions.create(
            model="tiny", messages=CHAT, response_format={"type": "json_schema", "json_schema": {
                "name": "x", "schema": {"type": "date"}}})
