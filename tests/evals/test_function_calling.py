"""BFCL scoring: schema mapping, the AST comparison rules, and evaluate() over a scripted
ChatModel on real BFCL cases (the scoring's logic, not a model's)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lmstack.chat.types import ChatResult, Message, ToolCall
from lmstack.evals.function_calling import (
    Case,
    evaluate,
    load_cases,
    score,
    to_json_schema,
    value_matches,
)

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "function_calling"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is not beside the repo")
TOOLS = [{"type": "function", "function": {"name": "area", "parameters": {
    "type": "object", "properties": {"base": {"type": "number"}, "height": {"type": "number"},
                                     "unit": {"type": "string"}}}}}]


def case(answers) -> Case:
    return Case("t", "multiple", [{"role": "user", "content": "?"}], TOOLS, answers)


def test_bfcl_types_become_json_schema_types():
    got = to_json_schema({"type": "dict", "properties": {"x": {"type": "float"},
                          "y": {"type": "tuple", "items": {"type": "any"}}}})
    assert got == {"type": "object", "properties": {"x": {"type": "number"},
                   "y": {"type": "array", "items": {}}}}


def test_value_rules_follow_bfcls_checker():
    assert value_matches(10, [10.0])  # an int where a float is expected
    assert not value_matches(10.5, [10])
    assert value_matches("New York, NY", ["new york ny"])  # case, spaces, punctuation
    assert not value_matches(True, [1]) and value_matches(True, [True])
    assert value_matches([3, 5], [[3, 5]]) and not value_matches([5, 3], [[3, 5]])
    assert value_matches({"k": "v"}, [{"k": ["v", "w"], "opt": [""]}])


def test_call_scoring():
    answer = [{"area": {"base": [10], "height": [5], "unit": ["", "m"]}}]
    assert score(case(answer), [("area", {"base": 10, "height": 5})])
    assert score(case(answer), [("area", {"base": 10.0, "height": 5, "unit": "m"})])
    assert not score(case(answer), [("area", {"base": 10})])  # a required value missing
    assert not score(case(answer), [("area", {"base": 10, "height": 5, "unit": "cm"})])
    assert not score(case(answer), [("volume", {"base": 10, "height": 5})])
    assert not score(case(answer), [("area", {"base": 10, "height": 5, "depth": 1})])
    assert not score(case(answer), [])
    two = [{"area": {"base": [1], "height": [2]}}, {"area": {"base": [3], "height": [4]}}]
    assert score(case(two), [("area", {"base": 3, "height": 4}),
                             ("area", {"base": 1, "height": 2})])  # any order
    assert score(case([]), []) and not score(case([]), [("area", {})])  # irrelevance


class Scripted:
    def __init__(self, replies):
        self.replies, self.sent = list(replies), []

    def chat(self, messages, tools=None, **sampling):
        self.sent.append(sampling)
        reply = self.replies.pop(0)
        return ChatResult(reply, "tool_calls" if reply.tool_calls else "stop")


@needs_data
def test_evaluate_real_cases_with_a_scripted_model():
    simple = load_cases(DATA, "live_simple", limit=2)
    irrelevant = load_cases(DATA, "irrelevance", limit=1)
    assert simple[0].tools[0]["function"]["parameters"]["type"] == "object"
    (want,) = simple[0].answers
    (name, args), = want.items()
    right = ToolCall(name, json.dumps({k: v[0] for k, v in args.items() if v[0] != ""}))
    model = Scripted([Message("assistant", None, [right]),
                      Message("assistant", None, [ToolCall(name, "{not json")]),
                      Message("assistant", "None of these tools fit.")])
    r = evaluate(model, simple + irrelevant, constrained=True)
    assert r["accuracy"] == {"live_simple": 0.5, "irrelevance": 1.0}
    assert r["made_a_call"] == pytest.approx(2 / 3)
    assert all(s["tool_choice"] == "required" and s["temperature"] == 0 for s in model.sent)


@needs_data
def test_evaluate_asks_cases_at_once_and_keeps_their_order():
    cases = load_cases(DATA, "live_simple", limit=3)
    together = threading.Barrier(3, timeout=10)  # breaks unless all three are asked at once

    class Echo:  # answers each case with its own question, once all three are waiting
        def chat(self, messages, tools=None, **sampling):
            together.wait()
            return ChatResult(Message("assistant", messages[-1]["content"]), "stop")

    r = evaluate(Echo(), cases, workers=3)
    assert [x["text"] for x in r["records"]] == [c.messages[-1]["content"] for c in cases]
    assert [x["id"] for x in r["records"]] == [c.id for c in cases]


@needs_data
def test_bad_category_and_data_are_one_line_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown BFCL category"):
        load_cases(DATA, "simple_python")
    out = subprocess.run([sys.executable, "-m", "lmstack", "agent", "eval", "--data",
                          str(tmp_path)], capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 2 and "no BFCL file" in out.stderr + out.stdout
    assert "Traceback" not in out.stderr
