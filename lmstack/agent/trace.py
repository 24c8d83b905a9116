"""A run's trace and budget: every step an agent takes, as events, optionally to a JSONL file.

One trace can be shared by a supervisor and the specialists it calls, so a multi-agent run
reads as one story. Each event is one JSON line, written and flushed as it happens: a run that
crashes or is killed still leaves every step before it on disk (what LangSmith-style tracing
gives, without a service).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any


@dataclass
class Budget:
    """Limits on one run: model calls (steps) and tokens (prompt + completion, as reported)."""

    max_steps: int = 8
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ValueError("max_tokens must be at least 1 (or None for no limit)")


@dataclass
class Trace:
    """Events in order; with `path`, also appended to that JSONL file as they come."""

    path: str | Path | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    tokens: int = 0  # tokens reported by every model call so far, all agents together
    _file: IO[str] | None = field(default=None, init=False, repr=False)

    def event(self, kind: str, agent: str = "agent", **data: Any) -> dict[str, Any]:
        record = {"t": round(time.time(), 3), "agent": agent, "kind": kind, **data}
        self.events.append(record)
        if self.path is not None:
            if self._file is None:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
            self._file.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
            self._file.flush()
        return record

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["kind"] == kind]


def read_trace(path: str | Path) -> list[dict[str, Any]]:
    """The events of a JSONL trace file, in order."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
