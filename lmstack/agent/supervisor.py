"""Multi-agent: a supervisor routes work to specialist agents, each exposed to it as a tool.

The roadmap's "a central agent + vertical agents" (LangGraph's supervisor pattern, OpenAI's
agents-as-tools): the supervisor sees one tool per specialist, named for it and described by
what it handles; calling it hands the request off to that specialist, which runs its own
tool loop with its own tools and instructions, and its answer comes back as the observation.
Every agent writes to one shared trace, so the whole run reads as one story.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lmstack.agent.loop import AgentRun, run_tools
from lmstack.agent.tools import Tool, ToolRegistry, tool
from lmstack.agent.trace import Budget, Trace
from lmstack.chat.protocol import ChatModel
from lmstack.chat.types import Message, MessageLike, to_message

SUPERVISOR_PROMPT = ("You coordinate a team of specialists. Hand each part of the user's "
                     "request to the specialist that handles it by calling its tool with a "
                     "complete, self-contained request, then answer the user from their "
                     "replies.")


@dataclass
class Specialist:
    """An agent with its own instructions and tools; `description` tells the supervisor what
    to send it."""

    name: str
    description: str
    model: ChatModel
    registry: ToolRegistry = field(default_factory=ToolRegistry)
    system: str = ""
    budget: Budget = field(default_factory=Budget)

    def run(self, request: str, trace: Trace, **sampling: Any) -> AgentRun:
        messages = [Message("system", self.system)] if self.system else []
        trace.event("handoff", self.name, request=request)
        return run_tools(self.model, [*messages, Message("user", request)], self.registry,
                         budget=self.budget, trace=trace, agent=self.name, **sampling)

    def as_tool(self, trace: Trace, **sampling: Any) -> Tool:
        def handoff(request: str) -> str:
            run = self.run(request, trace, **sampling)
            return run.answer if run.answer is not None else (
                f"error: the {self.name} agent stopped without an answer ({run.stopped})")

        # No timeout: a specialist is model calls, bounded by its own budget.
        return tool(handoff, name=self.name, description=self.description, timeout=None)


class Supervisor:
    """Routes a conversation to specialists (as tools) and answers from their replies."""

    def __init__(self, model: ChatModel, specialists: Sequence[Specialist],
                 system: str = SUPERVISOR_PROMPT, budget: Budget | None = None):
        names = [s.name for s in specialists]
        if len(set(names)) != len(names):
            raise ValueError(f"specialist names must be unique, got {names}")
        self.model, self.specialists = model, list(specialists)
        self.system, self.budget = system, budget or Budget()

    def run(self, messages: str | Sequence[MessageLike], trace: Trace | None = None,
            **sampling: Any) -> AgentRun:
        trace = trace if trace is not None else Trace()
        if isinstance(messages, str):
            messages = [Message("user", messages)]
        registry = ToolRegistry(s.as_tool(trace, **sampling) for s in self.specialists)
        history = [Message("system", self.system), *(to_message(m) for m in messages)]
        return run_tools(self.model, history, registry, budget=self.budget, trace=trace,
                         agent="supervisor", **sampling)

    async def arun(self, messages: str | Sequence[MessageLike], trace: Trace | None = None,
                   **sampling: Any) -> AgentRun:
        return await asyncio.to_thread(self.run, messages, trace, **sampling)
