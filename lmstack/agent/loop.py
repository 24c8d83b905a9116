"""The native function-calling loop: ask the model, run the tools it calls, feed back, repeat.

Each step sends the conversation and the registry's schemas to any `ChatModel`. A reply with
tool calls is answered with one "tool" message per call (matched by `tool_call_id`, as the
OpenAI chat-completions API expects) and the model is asked again; a reply without tool calls
is the final answer. `max_steps` bounds the number of model calls, so a model that keeps
calling tools forever is stopped. Tool failures are observations (see tools.py); only a
failure of the model backend itself raises.
Reference: OpenAI API, "Function calling" (the tool-call / tool-message round trip).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lmstack.agent.tools import ToolRegistry
from lmstack.chat.protocol import ChatModel
from lmstack.chat.types import Message, MessageLike, ToolCall, to_message


@dataclass
class ToolStep:
    """One executed call and what came back."""

    call: ToolCall
    observation: str


@dataclass
class AgentRun:
    """How a run ended: `stopped` is "answer" or "step_limit" (then `answer` is None)."""

    answer: str | None
    stopped: str
    steps: int  # model calls made
    messages: list[Message] = field(default_factory=list)  # the whole conversation
    tool_steps: list[ToolStep] = field(default_factory=list)


def run_tools(model: ChatModel, messages: Sequence[MessageLike], registry: ToolRegistry,
              max_steps: int = 8, **sampling: Any) -> AgentRun:
    """Run the loop from `messages` (not modified) until an answer or `max_steps` model calls."""
    if max_steps < 1:
        raise ValueError("max_steps must be at least 1")
    history = [to_message(m) for m in messages]
    schemas = registry.schemas()
    done: list[ToolStep] = []
    for step in range(1, max_steps + 1):
        reply = model.chat(history, tools=schemas or None, **sampling)
        history.append(reply.message)
        if not reply.tool_calls:
            return AgentRun(reply.content, "answer", step, history, done)
        for call in reply.tool_calls:
            observation = registry.run(call)
            done.append(ToolStep(call, observation))
            history.append(Message(role="tool", content=observation, tool_call_id=call.id,
                                   name=call.name))
    return AgentRun(None, "step_limit", max_steps, history, done)
