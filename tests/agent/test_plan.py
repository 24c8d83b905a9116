"""Plan-and-execute and reflection against a scripted ChatModel (the loop's logic)."""

from __future__ import annotations

from agent_helpers import Scripted, call

from lmstack.agent.plan import parse_plan, plan_and_execute, reflect
from lmstack.agent.tools import ToolRegistry, tool
from lmstack.agent.trace import Budget, Trace


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def test_parse_plan_reads_json_or_numbered_lines():
    assert parse_plan('Plan: ["multiply 17 by 23", "add 9"]', 4) == ["multiply 17 by 23", "add 9"]
    assert parse_plan("1. multiply\n2) add\n- report", 4) == ["multiply", "add", "report"]
    assert parse_plan("just do it", 4) == ["just do it"]
    assert parse_plan('["a", "b", "c"]', 2) == ["a", "b"]


def test_each_step_sees_earlier_results_and_the_answer_uses_them_all():
    model = Scripted([
        '["Multiply 17 by 23", "Add 9 to that"]',
        call("multiply", '{"a": 17, "b": 23}'), "391",
        call("add", '{"a": 391, "b": 9}'), "400",
        "17 × 23 + 9 = 400",
    ])
    trace = Trace()
    run = plan_and_execute(model, "What is 17 × 23 + 9?", ToolRegistry([multiply, add]),
                           trace=trace)
    assert (run.answer, run.stopped, run.results) == ("17 × 23 + 9 = 400", "answer",
                                                      ["391", "400"])
    step_two_system = model.seen[3][0].content
    assert "1. 391" in step_two_system and "What is 17 × 23 + 9?" in step_two_system
    assert "1. 391\n2. 400" in model.seen[5][0].content
    assert [e["agent"] for e in trace.of("tool")] == ["planner.step1", "planner.step2"]
    assert trace.of("plan")[0]["steps"] == ["Multiply 17 by 23", "Add 9 to that"]


def test_a_step_that_exhausts_its_budget_stops_the_plan():
    model = Scripted(['["loop forever", "never reached"]']
                     + [call("add", '{"a": 1, "b": 1}', f"c{i}") for i in range(5)])
    run = plan_and_execute(model, "t", ToolRegistry([add]), budget=Budget(max_steps=2))
    assert (run.answer, run.stopped, len(run.step_runs)) == (None, "step_limit", 1)


def test_reflection_keeps_an_approved_answer_and_replaces_a_wrong_one():
    trace = Trace()
    assert reflect(Scripted(["OK."]), "17*23?", "391", trace) == ("391", False)
    assert reflect(Scripted(["17 × 23 = 391"]), "17*23?", "381", trace) == ("17 × 23 = 391",
                                                                             True)
    assert trace.of("revise")[0]["before"] == "381"
    model = Scripted(['["multiply"]', call("multiply", '{"a": 17, "b": 23}'), "391", "381",
                      "391"])
    run = plan_and_execute(model, "17*23?", ToolRegistry([multiply]), reflection=True)
    assert (run.answer, run.revised) == ("391", True)
