"""The native function-calling loop: ask the model, run the tools it calls, feed back, repeat.

Each step sends the conversation and the registry's schemas to any `ChatModel`. A reply with
tool calls is answered with one "tool" message per call (matched by `tool_call_id`, as the
OpenAI chat-completions API expects) and the model is asked again; a reply without tool calls
is the final answer. A `Budget` bounds model calls and tokens, so a model that keeps calling
tools forever is stopped. Tool failures are observations (see tools.py); only a failure of
the model backend itself raises. Every step goes to the `Trace`.
Reference: OpenAI API, "Function calling" (the tool-call / tool-message round trip).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lmstack.agent.tools import ToolRegistry
from lmstack.agent.trace import Budget, Trace
from lmstack.chat.protocol import ChatModel
from lmstack.chat.types import ChatResult, Message, MessageLike, ToolCall, to_message


@dataclass
class ToolStep:
    """One executed call and what came back."""

    call: ToolCall
    observation: str


@dataclass
class AgentRun:
    """How a run ended: `stopped` is "answer", "step_limit" or "token_limit" (then `answer`
    is None)."""

    answer: str | None
    stopped: str
    steps: int  # model calls made
    messages: list[Message] = field(default_factory=list)  # the whole conversation
    tool_steps: list[ToolStep] = field(default_factory=list)
    tokens: int = 0  # prompt + completion tokens the model reported for this run


def ask(model: ChatModel, history: list[Message], trace: Trace, agent: str, step: int,
        tools: list[dict] | None = None, **sampling: Any) -> ChatResult:
    """One model call, traced with its reply and token usage."""
    reply = model.chat(history, tools=tools, **sampling)
    used = reply.usage.total_tokens
    trace.tokens += used
    trace.event("model", agent, step=step, content=reply.content, tokens=used,
                tool_calls=[c.to_dict() for c in reply.tool_calls])
    return reply


def over_budget(budget: Budget, tokens: int) -> bool:
    return budget.max_tokens is not None and tokens >= budget.max_tokens


def run_tools(model: ChatModel, messages: Sequence[MessageLike], registry: ToolRegistry,
              max_steps: int = 8, *, budget: Budget | None = None, trace: Trace | None = None,
              agent: str = "agent", force_first_call: bool = False, **sampling: Any
              ) -> AgentRun:
    """Run the loop from `messages` (not modified) until an answer or the budget runs out
    (`budget`, else `max_steps` model calls). force_first_call sends tool_choice="required"
    on the first model call only (a schema-guided call on lmstack's engine), so the model
    must act first and is free to answer in words once it has seen the result."""
    budget = budget or Budget(max_steps=max_steps)
    trace = trace if trace is not None else Trace()
    history = [to_message(m) for m in messages]
    schemas = registry.schemas()
    done: list[ToolStep] = []
    tokens = 0
    for step in range(1, budget.max_steps + 1):
        forced = {"tool_choice": "required"} if force_first_call and step == 1 and schemas \
            else {}
        reply = ask(model, history, trace, agent, step, schemas or None, **sampling, **forced)
        tokens += reply.usage.total_tokens
        history.append(reply.message)
        if not reply.tool_calls:
            trace.event("answer", agent, step=step, content=reply.content)
            return AgentRun(reply.content, "answer", step, history, done, tokens)
        for call in reply.tool_calls:
            observation = registry.run(call)
            trace.event("tool", agent, step=step, name=call.name, arguments=call.arguments,
                        observation=observation)
            done.append(ToolStep(call, observation))
            history.append(Message(role="tool", content=observation, tool_call_id=call.id,
                                   name=call.name))
        if over_budget(budget, tokens):
            trace.event("stop", agent, step=step, reason="token_limit", tokens=tokens)
            return AgentRun(None, "token_limit", step, history, done, tokens)
    trace.event("stop", agent, step=budget.max_steps, reason="step_limit")
    return AgentRun(None, "step_limit", budget.max_steps, history, done, tokens)


async def arun_tools(model: ChatModel, messages: Sequence[MessageLike], registry: ToolRegistry,
                     max_steps: int = 8, **kwargs: Any) -> AgentRun:
    """run_tools for async code: the loop runs in a worker thread, so the event loop (a web
    server's, say) keeps serving while the model thinks and tools run."""
    return await asyncio.to_thread(run_tools, model, messages, registry, max_steps, **kwargs)
