"""Schema-constrained decoding: the recognizer on its own, then a random tiny model whose
sampled outputs match the schema on every try (checked with `jsonschema`, the reference
validator), per request inside a continuous batch."""

from __future__ import annotations

import json

import jsonschema
import pytest
from engine_helpers import tiny_llama

from lmstack.engine import Engine, SamplingParams
from lmstack.engine.json_guide import JsonGuide, finished

TOOL_CALL = {"type": "object", "required": ["name", "arguments"], "properties": {
    "name": {"const": "multiply"},
    "arguments": {"type": "object", "required": ["a", "b"],
                  "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}}}}
SCHEMAS = [
    TOOL_CALL,
    {"type": "object", "required": ["city", "unit", "days"], "properties": {
        "city": {"type": "string", "maxLength": 12},
        "unit": {"enum": ["celsius", "fahrenheit"]},
        "days": {"type": "array", "items": {"type": "number"}, "minItems": 1, "maxItems": 3},
        "verbose": {"type": "boolean"}}},
    {"anyOf": [
        {"type": "object", "required": ["name"], "properties": {"name": {"const": "stop"}}},
        {"type": "object", "required": ["name", "arguments"], "properties": {
            "name": {"const": "lookup"},
            "arguments": {"type": "object", "required": ["id"],
                          "properties": {"id": {"type": ["integer", "null"]}}}}}]},
]


def prefix_state(schema, text: str) -> tuple[bool, bool]:
    """(text can still become a match, text is a complete match)."""
    states = JsonGuide.advance([(("V", schema, 1),)], text)
    return bool(states), any(not s for s in states)


@pytest.mark.parametrize("text, alive, done", [
    ('{"name": "multiply", "arguments": {"a": 17, "b": 23}}', True, True),
    ('{"arguments": {"b": -4, "a": 0}, "name": "multiply"}', True, True),  # any key order
    ('{"name":"mul', True, False),
    ('{"name": "add"', False, False),  # const
    ('{"arguments": {"a": 1.5', False, False),  # integer
    ('{"arguments": {"a": 07', False, False),  # no leading zeros
    ('{"name": "multiply", "arguments": {"a": 17}}', False, False),  # required b
    ('{"name": "multiply", "extra"', False, False),  # unknown key
    ('{ "name"', True, False),
    ('{  "name"', False, False),  # at most one whitespace character
    (' {', False, False),
])
def test_recognizer_prefixes(text, alive, done):
    assert prefix_state(TOOL_CALL, text) == (alive, done)


def test_recognizer_generic_json_enums_and_limits():
    assert prefix_state({}, '[1, 2.5e3, "x\\u00e9\\n", true, null, {"k": [ ]}]') == (True, True)
    enums = {"type": "array", "items": {"enum": [5, 55, "a"]}, "maxItems": 2}
    assert prefix_state(enums, '[5, 55]') == (True, True)
    assert prefix_state(enums, '[5, 55, ') == (False, False)
    assert prefix_state({"type": "string", "maxLength": 3}, '"abc"') == (True, True)
    assert prefix_state({"type": "string", "maxLength": 3}, '"abcd') == (False, False)
    assert prefix_state({"type": ["integer", "null"]}, "null") == (True, True)
    for bad, words in [({"type": "date"}, "not supported"), ({"properties": 5}, "properties"),
                       ({"anyOf": []}, "anyOf"), ({"required": ["x"], "properties": {}},
                                                  "not defined"),
                       ({"items": {"maxItems": -1}}, "maxItems")]:
        with pytest.raises(ValueError, match=words):
            JsonGuide(bad, [])


def sample(engine: Engine, schema, seeds, guided: bool = True) -> list[str]:
    params = [SamplingParams(max_tokens=160, temperature=1.0, seed=s,
                             guided_json=schema if guided else None) for s in seeds]
    return [o.text for o in engine.generate([[1, 2, 3]] * len(seeds), params)]


@pytest.mark.parametrize("schema", SCHEMAS, ids=["tool_call", "weather", "any_of"])
def test_sampled_outputs_match_the_schema_on_every_try(tokenizer, schema):
    engine = Engine(tiny_llama(), tokenizer)
    for text in sample(engine, schema, seeds=range(6)):
        jsonschema.validate(json.loads(text), schema)  # raises on any miss


def test_without_the_guide_the_same_model_writes_no_json(tokenizer):
    # The deliberate break: the guide, not luck, makes the outputs above valid.
    engine = Engine(tiny_llama(), tokenizer)
    texts = sample(engine, TOOL_CALL, seeds=range(6), guided=False)
    assert not any(_parses(t) for t in texts)


def test_guided_and_free_requests_share_a_batch(tokenizer):
    model = tiny_llama()
    free = SamplingParams(max_tokens=12, temperature=0, ignore_eos=True)
    guided = SamplingParams(max_tokens=160, temperature=0, guided_json=TOOL_CALL)
    alone = Engine(model, tokenizer).generate([[4, 5, 6]], free)[0].token_ids
    mixed = Engine(model, tokenizer).generate([[4, 5, 6], [1, 2, 3]], [free, guided])
    assert mixed[0].token_ids == alone  # another row's mask does not touch this one
    jsonschema.validate(json.loads(mixed[1].text), TOOL_CALL)
    assert mixed[1].finish_reason == "stop"


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("schema", [*SCHEMAS, {}], ids=["tool_call", "weather", "any_of", "any"])
def test_no_dead_ends_on_random_walks(schema):
    """Whatever valid prefix the model has written, some character can continue it: a dead
    end would leave a guided request with no token to sample."""
    import random

    alphabet = [chr(i) for i in range(32, 127)] + ["\n", "\t", "é"]
    rng = random.Random(0)
    for _ in range(60):
        states = [(("V", schema, 1),)]
        for _ in range(50):
            if any(finished(s) for s in states):
                break
            nxt = [c for c in alphabet if JsonGuide.advance(states, c)]
            assert nxt, f"dead end after a valid prefix (schema {schema})"
            states = JsonGuide.advance(states, rng.choice(nxt))
