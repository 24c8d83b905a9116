"""Running tools: validated arguments, and every failure returned as an observation string."""

from __future__ import annotations

import enum
import json
import time

import pytest
from pydantic import BaseModel

from lmstack.agent.tools import ToolRegistry, tool
from lmstack.chat.types import ToolCall


class Op(enum.Enum):
    ADD = "add"
    MUL = "mul"


class Point(BaseModel):
    x: int
    y: int


calls: list[tuple] = []


@tool
def calc(a: int, b: int, op: Op = Op.ADD) -> int:
    """Add or multiply two integers."""
    calls.append((a, b, op))
    return a + b if op is Op.ADD else a * b


@tool
def norm1(p: Point) -> dict:
    """Manhattan length of a point."""
    return {"point": p.model_dump(), "length": abs(p.x) + abs(p.y)}


@tool
def boom() -> str:
    """Always fails."""
    raise RuntimeError("disk on fire")


@tool(timeout=0.2)
def slow(seconds: float) -> str:
    """Sleep."""
    time.sleep(seconds)
    return "woke"


@pytest.fixture(autouse=True)
def _fresh_calls():
    calls.clear()


def test_valid_call_gets_validated_python_objects():
    assert calc.run('{"a": 6, "b": 7, "op": "mul"}') == "42"
    assert calls == [(6, 7, Op.MUL)]  # the enum member, not the string
    assert json.loads(norm1.run({"p": {"x": -2, "y": 3}})) == {
        "point": {"x": -2, "y": 3}, "length": 5}
    assert calc(1, 2) == 3  # still callable as a plain function


@pytest.mark.parametrize(("arguments", "expected"), [
    ('{"a": 1', "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"a": "six", "b": 7}', "a: Input should be a valid integer"),
    ('{"a": 1}', "b: Field required"),
    ('{"a": 1, "b": 2, "op": "div"}', "op: Input should be 'add' or 'mul'"),
    ('{"a": 1, "b": 2, "c": 3}', "c: Extra inputs are not permitted"),
])
def test_bad_arguments_become_observations_and_the_function_never_runs(arguments, expected):
    out = calc.run(arguments)
    assert out.startswith("error:")
    assert expected in out
    assert calls == []


def test_nested_model_errors_name_the_field_path():
    out = norm1.run('{"p": {"x": 1}}')
    assert out.startswith("error:") and "p.y: Field required" in out


def test_exception_inside_the_tool_is_an_observation():
    assert boom.run("{}") == "error: tool 'boom' raised RuntimeError: disk on fire"


def test_timeout_is_an_observation_and_returns_promptly():
    start = time.monotonic()
    assert slow.run('{"seconds": 5}') == "error: tool 'slow' timed out after 0.2 s"
    assert time.monotonic() - start < 2
    assert slow.run('{"seconds": 0}') == "woke"


def test_registry_runs_only_registered_tools():
    registry = ToolRegistry([calc, boom])
    assert registry.names() == ["calc", "boom"] and "calc" in registry and len(registry) == 2
    assert [s["function"]["name"] for s in registry.schemas()] == ["calc", "boom"]
    assert registry.run(ToolCall("calc", '{"a": 2, "b": 3}')) == "5"
    refused = registry.run(ToolCall("os.system", '{"command": "rm -rf /"}'))
    assert refused == "error: unknown tool 'os.system'; available tools: calc, boom"
    assert registry.run(ToolCall("slow", '{"seconds": 0}')).startswith("error: unknown tool")


def test_registry_refuses_duplicates_and_plain_functions():
    registry = ToolRegistry([calc])
    with pytest.raises(ValueError, match="already registered"):
        registry.register(calc)
    with pytest.raises(TypeError, match="use @tool"):
        registry.register(print)
