"""Session memory in a real SQLite file: persistence across restarts, the token window around
tool calls, the running summary (scripted summarizer) and recall by similarity."""

from __future__ import annotations

import sqlite3

import pytest
from agent_helpers import Scripted

from lmstack.agent.memory import SessionMemory
from lmstack.chat.types import Message, ToolCall

WORDS = ["order", "refund", "weather", "pizza"]


def bag_of_words(texts):
    """A tiny deterministic embedding: counts of a few topic words."""
    return [[t.lower().count(w) + 0.01 for w in WORDS] for t in texts]


def one_token_per_char(text: str) -> int:
    return len(text)


def test_history_survives_a_restart_and_sessions_stay_apart(tmp_path):
    db = tmp_path / "memory.db"
    mem = SessionMemory(db, "alice")
    mem.add({"role": "user", "content": "My order is A-17."}, Message("assistant", "Noted."))
    SessionMemory(db, "bob").add(Message("user", "hi"))
    mem.close()
    again = SessionMemory(db, "alice")  # a new process would do exactly this
    assert [(m.role, m.content) for m in again.messages()] == [
        ("user", "My order is A-17."), ("assistant", "Noted.")]
    assert again.export()[0] == {"role": "user", "content": "My order is A-17."}
    copy = SessionMemory(db, "carol")
    copy.inject(*again.export())
    assert [m.content for m in copy.messages()] == ["My order is A-17.", "Noted."]
    copy.clear()
    assert copy.messages() == [] and len(SessionMemory(db, "bob").messages()) == 1


def test_sql_injection_in_content_is_stored_as_data(tmp_path):
    db = tmp_path / "memory.db"
    evil = "x'); DROP TABLE messages; --"
    mem = SessionMemory(db, evil)
    mem.add(Message("user", evil))
    assert mem.messages()[0].content == evil
    tables = {r[0] for r in sqlite3.connect(db).execute("SELECT name FROM sqlite_master")}
    assert {"messages", "sessions"} <= tables


def test_window_keeps_recent_messages_and_never_starts_at_a_tool_result(tmp_path):
    mem = SessionMemory(tmp_path / "m.db", "s", window_tokens=30, count_tokens=one_token_per_char)
    call = ToolCall("lookup_order", '{"id": "A-17"}', id="c1")  # 14 characters of arguments
    mem.add(Message("user", "where is A-17?"),  # 14
            Message("assistant", None, [call]),
            Message("tool", "shipped", tool_call_id="c1", name="lookup_order"),  # 7
            Message("assistant", "It has shipped."))  # 15
    # 15 + 7 fit in 30, the call (14) does not: its result must not lead the window.
    assert [m.content for m in mem.window()] == ["It has shipped."]
    mem.window_tokens = 40
    assert [m.role for m in mem.window()] == ["assistant", "tool", "assistant"]


def test_what_leaves_the_window_is_folded_into_the_summary(tmp_path):
    summarizer = Scripted(["The user's order is A-17.", "Order A-17; the user wants a refund."])
    mem = SessionMemory(tmp_path / "m.db", "s", window_tokens=40,
                        count_tokens=one_token_per_char, summarizer=summarizer)
    mem.add(Message("user", "My order number is A-17."))  # 24: fits
    assert mem.summary == "" and summarizer.seen == []
    mem.add(Message("assistant", "Thanks, found it."))  # 17 + 24 > 40: the first one falls out
    assert mem.summary == "The user's order is A-17."
    assert "My order number is A-17." in summarizer.seen[0][0].content
    mem.add(Message("user", "I would like a refund for it now."))  # 33 + 17 > 40
    assert "Thanks, found it." in summarizer.seen[1][0].content
    assert "A-17." not in summarizer.seen[1][0].content.split("New messages:")[1]  # once only
    context = mem.context()
    assert context[0].role == "system" and "refund" in context[0].content
    assert [m.content for m in context[1:]] == ["I would like a refund for it now."]


def test_recall_finds_an_earlier_fact_outside_the_window(tmp_path):
    mem = SessionMemory(tmp_path / "m.db", "s", window_tokens=25,
                        count_tokens=one_token_per_char, embed=bag_of_words)
    mem.add(Message("user", "My refund request is R-9."), Message("user", "Nice weather."),
            Message("user", "Pizza tonight?"), Message("user", "Weather again."))
    facts = mem.recall("what happened to my refund?", k=1)
    assert [m.content for m in facts] == ["My refund request is R-9."]
    context = mem.context("refund status?", k=1)
    assert "R-9" in context[0].content and context[-1].content == "Weather again."
    with pytest.raises(ValueError, match="embed"):
        SessionMemory(tmp_path / "m.db", "s").recall("x")
