"""Structured JSON output: the schema check and the validate-and-retry loop."""

from __future__ import annotations

import pytest

from lmstack.prompting import StructuredOutputError, generate_json, validate
from lmstack.prompting.structured import parse_json

SCHEMA = {"type": "object", "required": ["answer", "unit"],
          "properties": {"answer": {"type": "integer", "minimum": 0},
                         "unit": {"type": "string", "enum": ["apples", "dollars"]}}}


def test_validate_names_the_first_problem():
    validate({"answer": 3, "unit": "apples"}, SCHEMA)
    for bad, message in [({"answer": 3}, "missing the required key 'unit'"),
                         ({"answer": "3", "unit": "apples"}, r"\$.answer should be integer"),
                         ({"answer": True, "unit": "apples"}, "should be integer"),
                         ({"answer": -1, "unit": "apples"}, ">= 0"),
                         ({"answer": 1, "unit": "pears"}, "one of")]:
        with pytest.raises(ValueError, match=message):
            validate(bad, SCHEMA)


def test_parse_json_finds_the_object_in_prose():
    assert parse_json('Sure! ```json\n{"answer": 5, "unit": "apples"}\n```') == {
        "answer": 5, "unit": "apples"}
    with pytest.raises(ValueError, match="no JSON"):
        parse_json("The answer is five.")


def test_retry_feeds_the_error_back():
    replies = iter(['{"answer": "five"}', '{"answer": 5, "unit": "apples"}'])
    prompts = []

    def generate(prompt):
        prompts.append(prompt)
        return next(replies)

    value, attempts = generate_json(generate, "How many apples?", SCHEMA)
    assert (value, attempts) == ({"answer": 5, "unit": "apples"}, 2)
    assert "invalid" in prompts[1] and "missing the required key" in prompts[1]
    with pytest.raises(StructuredOutputError, match="3 attempts"):
        generate_json(lambda p: "no idea", "How many?", SCHEMA, retries=2)
