"""One conversation turn at the desk: remembered history in, the team's answer out.

Shared by the terminal chat and the web chat. History lives in SQLite per session id
(lmstack.agent.memory), so a customer who comes back (or a restarted server) continues the
same conversation; each turn's full trace (every agent, tool call and observation) is appended
to a JSONL file when one is given.
"""

from __future__ import annotations

from pathlib import Path

from lmstack.agent.memory import SessionMemory
from lmstack.agent.supervisor import Supervisor
from lmstack.agent.trace import Trace
from lmstack.chat.types import Message


class Desk:
    def __init__(self, team: Supervisor, memory_path: str | Path,
                 trace_path: str | Path | None = None, window_tokens: int = 1500):
        self.team, self.memory_path = team, Path(memory_path)
        self.trace_path, self.window_tokens = trace_path, window_tokens

    def ask(self, session_id: str, text: str) -> tuple[str, Trace]:
        memory = SessionMemory(self.memory_path, session_id, window_tokens=self.window_tokens)
        try:
            history = [m for m in memory.context() if m.role in ("system", "user", "assistant")
                       and m.content]
            trace = Trace(self.trace_path)
            run = self.team.run([*history, Message("user", text)], trace=trace)
            trace.close()
            answer = run.answer or ("Sorry, I could not finish that request; a colleague will "
                                    "follow up.")
            memory.add(Message("user", text), Message("assistant", answer))
            return answer, trace
        finally:
            memory.close()
