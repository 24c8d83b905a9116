"""A supervisor routes to the right specialist and answers from its reply (scripted models)."""

from __future__ import annotations

import asyncio

import pytest
from agent_helpers import Scripted, call

from lmstack.agent.supervisor import Specialist, Supervisor
from lmstack.agent.tools import ToolRegistry, tool
from lmstack.agent.trace import Budget, Trace

ORDERS = {"A-17": "shipped on 2026-11-20"}


@tool
def lookup_order(order_id: str) -> str:
    """Look up an order's status by its id."""
    return ORDERS.get(order_id, "no such order")


def team(order_model, policy_model):
    return [Specialist("order_agent", "Questions about a specific order's status.", order_model,
                       ToolRegistry([lookup_order]), system="You handle orders."),
            Specialist("policy_agent", "Questions about refund and return policy.",
                       policy_model)]


def test_supervisor_hands_off_to_the_specialist_and_answers_from_it():
    order_model = Scripted([call("lookup_order", '{"order_id": "A-17"}'),
                            "Order A-17 shipped on 2026-11-20."])
    policy_model = Scripted([])  # must not be called
    boss = Scripted([call("order_agent", '{"request": "Status of order A-17?"}', "h1"),
                     "Your order A-17 shipped on 2026-11-20."])
    trace = Trace()
    run = Supervisor(boss, team(order_model, policy_model)).run("Where is my order A-17?",
                                                                 trace=trace)
    assert run.answer == "Your order A-17 shipped on 2026-11-20." and run.stopped == "answer"
    assert [t["function"]["name"] for t in boss.tools_seen[0]] == ["order_agent",
                                                                   "policy_agent"]
    assert boss.seen[1][-1].content == "Order A-17 shipped on 2026-11-20."
    assert order_model.seen[0][0].content == "You handle orders."
    assert policy_model.seen == []
    # One shared trace: supervisor -> hand-off -> specialist's tool -> back.
    assert [(e["agent"], e["kind"]) for e in trace.events] == [
        ("supervisor", "model"), ("order_agent", "handoff"), ("order_agent", "model"),
        ("order_agent", "tool"), ("order_agent", "model"), ("order_agent", "answer"),
        ("supervisor", "tool"), ("supervisor", "model"), ("supervisor", "answer")]


def test_a_specialist_out_of_budget_is_an_observation_not_a_crash():
    looping = Scripted([call("lookup_order", '{"order_id": "A-17"}', f"c{i}") for i in range(3)])
    spec = Specialist("order_agent", "orders", looping, ToolRegistry([lookup_order]),
                      budget=Budget(max_steps=2))
    boss = Scripted([call("order_agent", '{"request": "A-17?"}'), "Sorry, try later."])
    run = asyncio.run(Supervisor(boss, [spec]).arun("A-17?"))
    assert "stopped without an answer (step_limit)" in boss.seen[1][-1].content
    assert run.answer == "Sorry, try later."


def test_duplicate_specialist_names_are_refused():
    with pytest.raises(ValueError, match="unique"):
        Supervisor(Scripted([]), team(Scripted([]), Scripted([])) * 2)
