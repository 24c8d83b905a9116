"""The synthetic tool-use set: well-formed conversations whose results come from the real
tools, and the scorer's logic against scripted models (a perfect one and a guessing one)."""

from __future__ import annotations

import json

from agent_helpers import Scripted, call

from lmstack.agent.synthetic import TOOLS, make_cases, score_tool_use
from lmstack.chat.types import Message


def test_cases_are_consistent_and_bilingual():
    cases = make_cases(60, seed=0, zh_share=0.3)
    assert {c.tool for c in cases} == {"calculator", "convert_units", "add_days"}
    assert 5 < sum(c.lang == "zh" for c in cases) < 35
    for c in cases:
        m = c.messages()
        assert [x["role"] for x in m] == ["system", "user", "assistant", "tool", "assistant"]
        args = json.loads(m[2]["tool_calls"][0]["function"]["arguments"])
        assert args == c.arguments and c.result in c.answer
    assert make_cases(5, seed=1)[0].question != cases[0].question  # another seed, another set
    assert TOOLS.names() == ["calculator", "convert_units", "add_days"]


def test_scorer_counts_valid_calls_and_correct_answers():
    cases = make_cases(2, seed=3)
    perfect = Scripted([r for c in cases for r in (
        call(c.tool, json.dumps(c.arguments)), c.answer)])
    assert score_tool_use(perfect, cases) == {"valid_calls": 1.0, "correct_answers": 1.0,
                                              "cases": 2}
    guesser = Scripted(["The answer is 381."] * 2)
    assert score_tool_use(guesser, cases)["valid_calls"] == 0.0
    constrained = Scripted([call(cases[0].tool, json.dumps(cases[0].arguments)),
                            Message("assistant", "no idea")])
    out = score_tool_use(constrained, cases[:1], constrained=True)
    assert out == {"valid_calls": 1.0, "correct_answers": 0.0, "cases": 1}
    assert constrained.sampling_seen[0]["tool_choice"] == "required"
    assert "tool_choice" not in constrained.sampling_seen[1]  # free to answer after the call
