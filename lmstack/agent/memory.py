"""Agent memory per session, persisted in SQLite: a token-window buffer, a running summary, and
recall of earlier facts by embedding similarity.

What a model sees of a long conversation (`context`): the running summary of what fell out of
the window, the earlier messages most similar to the new question (vector memory), then the
most recent messages that fit `window_tokens`. The window never starts inside a tool-call
round trip: a "tool" message whose assistant call was cut off is dropped with it (memory that
breaks native tool calling this way is a frequent complaint against agent frameworks).
Everything is stored per `session_id` in one SQLite file, in transactions, so a restarted
process picks the conversation up where it was; `export` / `inject` move histories in and out.
The embedding function is passed in (e.g. lmstack.embed.Embedder.encode): this module stays
free of torch and numpy, and similarity is computed in plain Python over stored float32 vectors.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from array import array
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lmstack.chat.protocol import ChatModel
from lmstack.chat.types import Message, MessageLike, ToolCall, to_message

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY, summary TEXT NOT NULL DEFAULT '', summarized_upto INTEGER NOT NULL
    DEFAULT 0);
CREATE TABLE IF NOT EXISTS messages (
    session_id TEXT NOT NULL, seq INTEGER NOT NULL, role TEXT NOT NULL, content TEXT,
    tool_calls TEXT, tool_call_id TEXT, name TEXT, created REAL NOT NULL, embedding BLOB,
    PRIMARY KEY (session_id, seq));
"""
SUMMARY_PROMPT = ("Update the running summary of a conversation with the messages below. Keep "
                  "every fact, name, number and decision; be brief.\n\nSummary so far:\n"
                  "{summary}\n\nNew messages:\n{messages}\n\nUpdated summary:")


def approx_tokens(text: str) -> int:
    """About four characters a token for English (fewer for Chinese: count those as one each)."""
    wide = sum(1 for ch in text if ord(ch) > 0x2E80)
    return (len(text) - wide) // 4 + wide + 4  # +4: the role and turn markers


class SessionMemory:
    """One conversation's memory; many sessions share one database file."""

    def __init__(self, path: str | Path, session_id: str, *, window_tokens: int = 2048,
                 count_tokens: Callable[[str], int] = approx_tokens,
                 summarizer: ChatModel | None = None,
                 embed: Callable[[list[str]], Sequence[Sequence[float]]] | None = None):
        if window_tokens < 1:
            raise ValueError("window_tokens must be at least 1")
        self.path, self.session_id = Path(path), session_id
        self.window_tokens, self.count_tokens = window_tokens, count_tokens
        self.summarizer, self.embed = summarizer, embed
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path)
        with self.db:
            self.db.executescript(SCHEMA)
            self.db.execute("INSERT OR IGNORE INTO sessions (id) VALUES (?)", (session_id,))

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------------ writing
    def add(self, *messages: MessageLike) -> None:
        """Store messages (one transaction); then fold what left the window into the summary."""
        msgs = [to_message(m) for m in messages]
        vectors = self._vectors([m.content or "" for m in msgs])
        with self.db:
            (last,) = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM messages WHERE "
                                      "session_id = ?", (self.session_id,)).fetchone()
            self.db.executemany(
                "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(self.session_id, last + i, m.role, m.content,
                  json.dumps([c.to_dict() for c in m.tool_calls]) if m.tool_calls else None,
                  m.tool_call_id, m.name, time.time(), v)
                 for i, (m, v) in enumerate(zip(msgs, vectors, strict=True), 1)])
        if self.summarizer is not None:
            self._summarize()

    inject = add  # an exported history (or one from elsewhere) goes in the same way

    def clear(self) -> None:
        with self.db:
            self.db.execute("DELETE FROM messages WHERE session_id = ?", (self.session_id,))
            self.db.execute("UPDATE sessions SET summary = '', summarized_upto = 0 WHERE id = ?",
                            (self.session_id,))

    # ------------------------------------------------------------------ reading
    def messages(self) -> list[Message]:
        return [m for _, m in self._rows()]

    def export(self) -> list[dict[str, Any]]:
        """The whole history as OpenAI-style message dicts (JSON-ready)."""
        return [m.to_dict() for m in self.messages()]

    @property
    def summary(self) -> str:
        (text,) = self.db.execute("SELECT summary FROM sessions WHERE id = ?",
                                  (self.session_id,)).fetchone()
        return text

    def window(self) -> list[Message]:
        """The most recent messages within window_tokens, never starting at a tool result."""
        return [m for _, m in self._window_rows(self._rows())]

    def recall(self, query: str, k: int = 3, exclude_recent: bool = True) -> list[Message]:
        """The k earlier messages most similar to `query` (cosine), oldest first; messages
        still in the window are skipped when exclude_recent (the model sees them anyway)."""
        if self.embed is None:
            raise ValueError("recall needs an embed function: SessionMemory(..., embed=...)")
        (q,) = self._vectors([query])
        qv = array("f")
        qv.frombytes(q)
        rows = self._rows()
        skip = {seq for seq, _ in self._window_rows(rows)} if exclude_recent else set()
        scored = []
        for seq, blob in self.db.execute(
                "SELECT seq, embedding FROM messages WHERE session_id = ? AND embedding IS "
                "NOT NULL ORDER BY seq", (self.session_id,)):
            v = array("f")
            v.frombytes(blob)
            scored.append((_cosine(qv, v), seq))
        by_seq = dict(rows)
        best = sorted((s for s in scored if s[1] not in skip), reverse=True)[:k]
        return [by_seq[seq] for _, seq in sorted(best, key=lambda s: s[1])]

    def context(self, query: str | None = None, k: int = 3) -> list[Message]:
        """What to send the model: summary, recalled facts (when a query and embed are
        given), then the window."""
        out = []
        if self.summary:
            out.append(Message("system", f"Summary of the earlier conversation: {self.summary}"))
        if query and self.embed is not None:
            facts = [m for m in self.recall(query, k) if m.content]
            if facts:
                out.append(Message("system", "Earlier messages that may be relevant:\n" +
                                   "\n".join(f"- {m.role}: {m.content}" for m in facts)))
        return out + self.window()

    # ------------------------------------------------------------------ internals
    def _window_rows(self, rows: list[tuple[int, Message]]) -> list[tuple[int, Message]]:
        kept, used = [], 0
        for seq, m in reversed(rows):
            used += self.count_tokens(m.content or "") + sum(
                self.count_tokens(c.arguments) for c in m.tool_calls)
            if used > self.window_tokens:
                break
            kept.append((seq, m))
        kept.reverse()
        while kept and kept[0][1].role == "tool":  # its assistant call fell out of the window
            kept.pop(0)
        return kept

    def _rows(self) -> list[tuple[int, Message]]:
        rows = self.db.execute(
            "SELECT seq, role, content, tool_calls, tool_call_id, name FROM messages WHERE "
            "session_id = ? ORDER BY seq", (self.session_id,)).fetchall()
        return [(seq, Message(role, content, [ToolCall.from_dict(c) for c in
                                              json.loads(calls or "[]")], call_id, name))
                for seq, role, content, calls, call_id, name in rows]

    def _vectors(self, texts: list[str]) -> list[bytes | None]:
        if self.embed is None:
            return [None] * len(texts)
        return [array("f", [float(x) for x in v]).tobytes() for v in self.embed(texts)]

    def _summarize(self) -> None:
        """Fold messages that have left the window (and are not yet summarized) into the
        running summary: one model call per fold, not per message."""
        rows = self._rows()
        in_window = len(self._window_rows(rows))
        (upto,) = self.db.execute("SELECT summarized_upto FROM sessions WHERE id = ?",
                                  (self.session_id,)).fetchone()
        fallen = [(seq, m) for seq, m in rows[:len(rows) - in_window] if seq > upto]
        if not fallen:
            return
        text = "\n".join(f"{m.role}: {m.content or [c.to_dict() for c in m.tool_calls]}"
                         for _, m in fallen)
        reply = self.summarizer.chat([Message("user", SUMMARY_PROMPT.format(
            summary=self.summary or "(empty)", messages=text))], temperature=0)
        with self.db:
            self.db.execute("UPDATE sessions SET summary = ?, summarized_upto = ? WHERE id = ?",
                            (reply.content.strip(), fallen[-1][0], self.session_id))


def _cosine(a: array, b: array) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0
