"""The function-calling loop against a scripted ChatModel: the loop's logic, not a model's."""

from __future__ import annotations

import pytest
from agent_helpers import Scripted, call

from lmstack.agent.loop import run_tools
from lmstack.agent.tools import ToolRegistry, tool
from lmstack.chat.protocol import ChatModel
from lmstack.chat.types import Message, ToolCall


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


def test_scripted_model_is_a_chat_model():
    assert isinstance(Scripted([]), ChatModel)


def test_tool_result_reaches_the_next_turn_and_the_answer_ends_the_run():
    model = Scripted([call("multiply", '{"a": 17, "b": 23}', "c1"),
                      Message("assistant", "17 × 23 = 391")])
    question = [{"role": "user", "content": "What is 17 × 23?"}]
    run = run_tools(model, question, ToolRegistry([multiply]), temperature=0)
    assert (run.answer, run.stopped, run.steps) == ("17 × 23 = 391", "answer", 2)
    assert model.tools_seen[0] == [multiply.schema()]
    second_turn = model.seen[1]
    assert [m.role for m in second_turn] == ["user", "assistant", "tool"]
    assert second_turn[2].content == "391" and second_turn[2].tool_call_id == "c1"
    assert second_turn[2].name == "multiply"
    assert [s.observation for s in run.tool_steps] == ["391"]
    assert question == [{"role": "user", "content": "What is 17 × 23?"}]  # caller's list intact


def test_bad_arguments_and_unknown_tools_are_observations_and_the_loop_goes_on():
    model = Scripted([
        Message("assistant", None, [ToolCall("multiply", '{"a": 17, "b": ', id="c1"),
                                    ToolCall("divide", '{"a": 1}', id="c2")]),
        call("multiply", '{"a": "seventeen", "b": 23}', "c3"),
        call("multiply", '{"a": 17, "b": 23}', "c4"),
        Message("assistant", "391"),
    ])
    run = run_tools(model, [Message("user", "17*23?")], ToolRegistry([multiply]))
    assert (run.answer, run.stopped, run.steps) == ("391", "answer", 4)
    obs = [s.observation for s in run.tool_steps]
    assert "not valid JSON" in obs[0]
    assert obs[1].startswith("error: unknown tool 'divide'")
    assert "a: Input should be a valid integer" in obs[2]
    assert obs[3] == "391"
    # Both calls of the first turn were answered, each under its own id, before turn two.
    assert [(m.role, m.tool_call_id) for m in model.seen[1][2:]] == [("tool", "c1"),
                                                                     ("tool", "c2")]
    assert model.seen[1][2].content == obs[0]


def test_step_limit_stops_a_model_that_never_answers():
    model = Scripted([call("multiply", '{"a": 1, "b": 1}', f"c{i}") for i in range(10)])
    run = run_tools(model, [Message("user", "loop")], ToolRegistry([multiply]), max_steps=3)
    assert (run.answer, run.stopped, run.steps) == (None, "step_limit", 3)
    assert len(model.seen) == 3 and len(model.replies) == 7
    assert run.messages[-1].role == "tool"


def test_no_tools_sends_none_and_max_steps_is_checked():
    model = Scripted([Message("assistant", "hi")])
    run = run_tools(model, [Message("user", "hello")], ToolRegistry())
    assert model.tools_seen == [None] and run.answer == "hi" and run.steps == 1
    with pytest.raises(ValueError, match="max_steps"):
        run_tools(model, [], ToolRegistry(), max_steps=0)
