"""The learning topics, found by file name: every `lmstack/learn/topic_*.py` declares `TOPIC`.

The same discovery as the demo's stages (lmstack/demo/registry.py): a new topic is one new
file. A topic's `run(out, tiny)` writes `out/report.md` (and its plots) and returns its numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmstack.demo.registry import discover


@dataclass(frozen=True)
class Topic:
    name: str                                     # what `lmstack learn NAME` calls it
    summary: str                                  # one line in the list of topics
    run: Callable[[Path, bool], dict[str, Any]]   # (output folder, tiny) -> its results


def all_topics() -> list[Topic]:
    """Every topic module's TOPIC, by name (imports only the topic modules; each keeps its
    heavy imports inside `run`, so listing stays fast)."""
    topics = discover(__package__, Path(__file__).parent, "topic_", "TOPIC")
    return sorted(topics, key=lambda t: t.name)


def find_topic(name: str) -> Topic:
    topics = {t.name: t for t in all_topics()}
    if name not in topics:
        raise ValueError(f"no topic {name!r}; run `lmstack learn` to list them "
                         f"({', '.join(topics) or 'none yet'})")
    return topics[name]
