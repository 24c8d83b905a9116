"""ReAct: a parser tolerant of how small models break the format, and the text-protocol loop
against a scripted ChatModel (the loop's logic, not a model's)."""

from __future__ import annotations

import asyncio

import pytest
from agent_helpers import Scripted

from lmstack.agent.loop import arun_tools
from lmstack.agent.react import parse_react, react_prompt, run_react
from lmstack.agent.tools import ToolRegistry, tool
from lmstack.agent.trace import Budget, Trace, read_trace


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


@pytest.mark.parametrize("text", [
    'Thought: I should multiply.\nAction: multiply\nAction Input: {"a": 17, "b": 23}',
    'thought: multiply\naction: multiply\naction input: {"a": 17, "b": 23}',
    '**Thought:** multiply\n**Action:** multiply\n**Action Input:** {"a": 17, "b": 23}',
    'Thought: x\nAction: multiply\nAction Input:\n```json\n{"a": 17, "b": 23}\n```',
    "Thought: x\nAction: multiply\nAction Input: {'a': 17, 'b': 23}",
    'Action: multiply({"a": 17, "b": 23})',
    "Action: multiply(a=17, b=23)",
    'Thought: x\nAction: `multiply`\nAction_Input: {"a": 17, "b": 23} because I must',
    # An invented observation and answer after the action are cut off.
    'Action: multiply\nAction Input: {"a": 17, "b": 23}\nObservation: 400\nFinal Answer: 400',
])
def test_parser_reads_the_ways_small_models_write_an_action(text):
    step = parse_react(text)
    assert (step.action, step.arguments, step.final, step.error) == (
        "multiply", {"a": 17, "b": 23}, None, None)


def test_parser_final_answers_and_errors():
    assert parse_react("Thought: done\nFinal Answer: 391").final == "391"
    assert parse_react("FINAL ANSWER:  17 × 23 = 391 ").final == "17 × 23 = 391"
    assert parse_react("Thought: hmm").error.startswith("no 'Action:'")
    assert "not a JSON object" in parse_react("Action: multiply\nAction Input: [1, 2]").error
    # literal_eval reads literals only: an expression is not run, it is unreadable input.
    assert parse_react("Action: multiply\nAction Input: __import__('os')").arguments is None


def test_prompt_lists_tools_with_their_arguments():
    prompt = react_prompt(ToolRegistry([multiply]))
    assert "- multiply: Multiply two integers." in prompt and '"a"' in prompt
    assert "[multiply]" in prompt


def test_react_loop_recovers_from_a_bad_reply_and_answers(tmp_path):
    model = Scripted([
        "I think the answer is big.",  # no format at all: told how to fix it
        "Thought: use the tool\nAction: multiply\nAction Input: {'a': 17, 'b': 23}",
        "Thought: I now know\nFinal Answer: 17 × 23 = 391",
    ])
    trace = Trace(tmp_path / "run.jsonl")
    run = run_react(model, "What is 17 × 23?", ToolRegistry([multiply]), trace=trace)
    trace.close()
    assert (run.answer, run.stopped, run.steps, run.tokens) == ("17 × 23 = 391", "answer", 3, 30)
    assert model.seen[1][-1].content.startswith("Observation: error: no 'Action:'")
    assert model.seen[2][-1].content == "Observation: 391"
    assert model.sampling_seen[0]["stop"] == ["\nObservation:"]
    kinds = [e["kind"] for e in read_trace(tmp_path / "run.jsonl")]
    assert kinds == ["model", "tool", "model", "tool", "model", "answer"]


def test_budgets_stop_a_looping_agent():
    looping = ["Action: multiply\nAction Input: {\"a\": 1, \"b\": 1}"] * 10
    run = run_react(Scripted(looping), "loop", ToolRegistry([multiply]),
                    budget=Budget(max_steps=3))
    assert (run.answer, run.stopped, run.steps) == (None, "step_limit", 3)
    run = run_react(Scripted(looping, tokens_per_reply=40), "loop", ToolRegistry([multiply]),
                    budget=Budget(max_steps=10, max_tokens=100))
    assert (run.stopped, run.steps, run.tokens) == ("token_limit", 3, 120)
    with pytest.raises(ValueError, match="max_tokens"):
        Budget(max_tokens=0)


def test_arun_is_the_same_loop_for_async_callers():
    model = Scripted(["391"])
    run = asyncio.run(arun_tools(model, [{"role": "user", "content": "17*23?"}],
                                 ToolRegistry([multiply])))
    assert run.answer == "391" and run.stopped == "answer"
