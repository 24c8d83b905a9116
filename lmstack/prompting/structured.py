"""Structured output: JSON that validates against a schema, by validate-and-retry.

Follows JSON Schema (draft 2020-12) for the subset it checks (type, properties, required, enum,
items, minimum/maximum); a failed attempt is retried with the validation error in the prompt.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
          "integer": int, "number": (int, float)}


class StructuredOutputError(ValueError):
    """No attempt produced JSON that validates; the message holds the last error."""


def validate(value: Any, schema: dict, path: str = "$") -> None:
    """Raise ValueError naming the first place `value` breaks `schema` (a JSON Schema subset)."""
    kind = schema.get("type")
    if kind:
        ok = isinstance(value, _TYPES[kind]) and not (
            kind in ("integer", "number") and isinstance(value, bool))
        if not ok:
            raise ValueError(f"{path} should be {kind}, got {json.dumps(value)}")
    if "enum" in schema and value not in schema["enum"]:
        raise ValueError(f"{path} should be one of {schema['enum']}, got {json.dumps(value)}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise ValueError(f"{path} should be >= {schema['minimum']}, got {value}")
        if "maximum" in schema and value > schema["maximum"]:
            raise ValueError(f"{path} should be <= {schema['maximum']}, got {value}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                raise ValueError(f"{path} is missing the required key {key!r}")
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                validate(value[key], sub, f"{path}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            validate(item, schema["items"], f"{path}[{i}]")


def parse_json(text: str) -> Any:
    """The first JSON object or array in a completion (models wrap it in prose or ``` fences)."""
    decoder = json.JSONDecoder()
    for i, ch in enumerate(text):
        if ch in "{[":
            try:
                return decoder.raw_decode(text[i:])[0]
            except json.JSONDecodeError:
                continue
    raise ValueError("no JSON object found in the reply")


def generate_json(generate: Callable[[str], str], prompt: str, schema: dict,
                  retries: int = 2) -> tuple[Any, int]:
    """Ask `generate` for JSON matching `schema`; on a parse or validation failure ask again
    with the error appended, up to `retries` more times. Returns (value, attempts used)."""
    request = f"{prompt}\nReply with JSON only, matching this schema: {json.dumps(schema)}"
    error = ""
    for attempt in range(1, retries + 2):
        text = generate(request if not error else
                        f"{request}\nYour previous reply was invalid ({error}). Try again.")
        try:
            value = parse_json(text)
            validate(value, schema)
            return value, attempt
        except ValueError as e:
            error = str(e)
    raise StructuredOutputError(f"no valid JSON after {retries + 1} attempts: {error}")
