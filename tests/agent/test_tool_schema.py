"""@tool schemas, compared literally with the JSON an OpenAI `tools` entry should carry."""

from __future__ import annotations

import enum
from typing import Literal, Optional

import pytest
from pydantic import BaseModel

from lmstack.agent.tools import parse_docstring, tool
from lmstack.chat.types import tool_schema


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class Address(BaseModel):
    """Where to ship."""

    city: str
    zip_code: Optional[str] = None  # noqa: UP045 - Optional spelling on purpose


def test_scalars_required_and_defaults():
    @tool
    def weather(city: str, days: int = 1, threshold: float = 0.5, metric: bool = True) -> str:
        """Get the forecast
        for a city.

        Longer text that is not part of the description.

        Args:
            city: The city's name,
                in English.
            days (int): How many days ahead.
        """
        return city

    assert weather.schema() == {"type": "function", "function": {
        "name": "weather",
        "description": "Get the forecast for a city.",
        "parameters": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "city": {"type": "string", "description": "The city's name, in English."},
                "days": {"type": "integer", "default": 1, "description": "How many days ahead."},
                "threshold": {"type": "number", "default": 0.5},
                "metric": {"type": "boolean", "default": True},
            },
            "required": ["city"],
        }}}
    assert tool_schema(weather) == weather.schema()  # the chat layer accepts a Tool as it is


def test_enum_literal_list_optional():
    @tool
    def convert(value: float, unit: Unit, mode: Literal["fast", "exact"] = "fast",
                tags: list[str] | None = None, scores: list[int] = [1]) -> float:  # noqa: B006
        """Convert a temperature."""
        return value

    assert convert.parameters == {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "value": {"type": "number"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "mode": {"type": "string", "enum": ["fast", "exact"], "default": "fast"},
            "tags": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}],
                     "default": None},
            "scores": {"type": "array", "items": {"type": "integer"}, "default": [1]},
        },
        "required": ["value", "unit"],
    }


def test_nested_model_is_inlined_and_a_property_named_title_survives():
    @tool(name="ship", timeout=None)
    def ship_order(address: Address, title: str) -> str:
        """Ship an order.

        Args:
            address: Destination.
            title: Label printed on the box.
        """
        return address.city

    assert ship_order.name == "ship"
    assert ship_order.parameters == {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "address": {
                "type": "object",
                # the parameter's own description wins over the model's docstring
                "description": "Destination.",
                "properties": {
                    "city": {"type": "string"},
                    "zip_code": {"anyOf": [{"type": "string"}, {"type": "null"}],
                                 "default": None},
                },
                "required": ["city"],
            },
            "title": {"type": "string", "description": "Label printed on the box."},
        },
        "required": ["address", "title"],
    }


def test_parameters_a_model_cannot_fill_are_refused():
    def untyped(x):
        """No hint."""
    with pytest.raises(TypeError, match="type hint"):
        tool(untyped)

    def varargs(*xs: int):
        """Star args."""
    with pytest.raises(TypeError, match=r"\*xs"):
        tool(varargs)


def test_parse_docstring_sections():
    desc, params = parse_docstring("""Add two numbers.

    Args:
        a (int): First.
        b: Second,
            continued.

    Returns:
        c: not a parameter.
    """)
    assert desc == "Add two numbers."
    assert params == {"a": "First.", "b": "Second, continued."}
