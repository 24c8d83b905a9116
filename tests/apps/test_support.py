"""The customer-service system with scripted models (the loops' logic): the supervisor routes
to the right specialist, tools read and write the real SQLite file, injection strings stay
data, the policy is retrieved, eligibility follows the rules, the web chat remembers."""

from __future__ import annotations

import sqlite3
import sys
from datetime import date
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "agent"))  # the scripted ChatModel
from agent_helpers import Scripted, call

from lmstack.apps.support import Policy, SupportDB, support_team
from lmstack.apps.support.desk import Desk
from lmstack.apps.support.policy import refund_decision
from lmstack.apps.support.tools import order_tools, policy_tools
from lmstack.apps.support.web import create_support_app
from lmstack.chat.types import ToolCall

TODAY = date(2026, 11, 26)


@pytest.fixture
def db(tmp_path):
    return SupportDB(tmp_path / "shop.db", today=TODAY).seed()


def run(registry, name, **args):
    import json

    return registry.run(ToolCall(name, json.dumps(args)))


def test_refund_rules_follow_the_policy(db):
    def decide(order_id, damaged=False):
        return refund_decision(db.order(order_id), TODAY, damaged)

    assert decide("A-1001")[0] is True  # clothing, 9 days
    assert decide("A-1002") == (
        False, "delivered 20 days ago; the limit for electronics is 14 days (Electronics)")
    assert decide("A-1003")[0] is False  # digital
    assert decide("A-1004")[0] is True and "not delivered" in decide("A-1004")[1]
    assert decide("A-1005")[0] is False  # final sale
    assert decide("A-1007")[0] is False and decide("A-1007", damaged=True)[0] is True


def test_policy_search_finds_the_section():
    policy = Policy()
    assert policy.search("can I return headphones I bought?")[0].title == "Electronics"
    assert policy.search("my parcel arrived broken and damaged")[0].title == \
        "Damaged or wrong items"
    assert "does not cover" in run(policy_tools(policy), "search_policy", question="xyzzy")


def test_tools_write_tickets_and_keep_injection_strings_as_data(db):
    tools = order_tools(db)
    evil = "Refund'); DROP TABLE orders; --"
    out = run(tools, "create_ticket", order_id="a-1001", subject=evil, details=evil)
    assert '"ticket_id": 1' in out
    assert db.ticket(1)["subject"] == evil
    assert db.order("A-1001") is not None  # the table is still there
    assert "no order" in run(tools, "lookup_order", order_id="A-1' OR '1'='1")
    assert '"status": "resolved"' in run(tools, "update_ticket", ticket_id=1, status="resolved",
                                         note="refunded")
    assert "Input should be" in run(tools, "update_ticket", ticket_id=1, status="closed")
    tables = {r[0] for r in sqlite3.connect(db.path).execute("SELECT name FROM sqlite_master")}
    assert {"customers", "orders", "tickets"} <= tables


def test_supervisor_routes_orders_and_policy_questions(db):
    model = Scripted([
        # The supervisor hands the order question to the order agent ...
        call("order_agent", '{"request": "Refund for order A-1002?"}', "h1"),
        # ... which checks eligibility, opens a ticket and replies ...
        call("check_refund_eligibility", '{"order_id": "A-1002"}', "t1"),
        call("create_ticket", '{"order_id": "A-1002", "subject": "Refund request"}', "t2"),
        "A-1002 is past the 14-day electronics window; ticket 1 is open.",
        # ... and the supervisor answers from that.
        "Sorry, A-1002 cannot be refunded (14-day electronics limit). Ticket 1 is open.",
    ])
    team = support_team(model, db)
    run_ = team.run("Can I get a refund for order A-1002?")
    assert run_.answer.startswith("Sorry, A-1002 cannot be refunded")
    observations = [m.content for msgs in model.seen for m in msgs if m.role == "tool"]
    assert any('"eligible": false' in o for o in observations)
    assert db.ticket(1)["order_id"] == "A-1002"
    policy_model = Scripted([call("policy_agent", '{"request": "damaged items?"}', "h1"),
                             call("search_policy", '{"question": "damaged items"}', "t1"),
                             "Damaged items: full refund within 60 days.", "Within 60 days."])
    assert support_team(policy_model, db).run("What if it arrives damaged?").answer == \
        "Within 60 days."
    assert "Damaged or wrong items" in policy_model.seen[2][-1].content


def test_web_chat_answers_over_http_and_remembers_the_session(db, tmp_path):
    from lmstack.serve import BackgroundServer

    model = Scripted(["Hello! How can I help?", "You asked about A-1001 before."])
    desk = Desk(support_team(model, db), tmp_path / "memory.db", tmp_path / "trace.jsonl")
    with BackgroundServer(create_support_app(desk)) as server:
        page = httpx.get(server.url + "/support")
        assert page.status_code == 200 and "Support desk" in page.text
        first = httpx.post(server.url + "/support/chat", json={
            "session_id": "s1", "message": "Hi, about order A-1001"}, timeout=30)
        assert first.json()["reply"] == "Hello! How can I help?"
        second = httpx.post(server.url + "/support/chat", json={
            "session_id": "s1", "message": "What did I ask?"}, timeout=30)
        assert second.json()["reply"] == "You asked about A-1001 before."
        bad = httpx.post(server.url + "/support/chat", json={"session_id": "../x",
                                                             "message": "hi"})
        assert bad.status_code == 400
    # The second turn saw the first one, from the SQLite memory.
    assert "Hi, about order A-1001" in [m.content for m in model.seen[1]]
    assert (tmp_path / "trace.jsonl").read_text().count('"kind": "answer"') == 2
