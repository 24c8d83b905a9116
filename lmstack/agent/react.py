"""ReAct: Thought / Action / Observation in plain text, for models without native tool calls.

Yao et al. 2023, "ReAct: Synergizing Reasoning and Acting in Language Models". The model writes
a Thought, then either an Action with an Action Input (JSON arguments) or a Final Answer; the
loop runs the action and appends its Observation. Small local models break the format in many
ways, and "could not parse LLM output" is the most reported ReAct failure, so `parse_react`
accepts what they actually write: any case, markdown bold, `Action: tool(a=1, b=2)` or
`tool({...})`, arguments in code fences or with single quotes, a missing Action Input, and an
Observation the model invented (cut off: only the tool writes observations). A reply that
still cannot be read goes back to the model as an observation saying how to fix it.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lmstack.agent.loop import AgentRun, ToolStep, ask, over_budget
from lmstack.agent.tools import ToolRegistry
from lmstack.agent.trace import Budget, Trace
from lmstack.chat.protocol import ChatModel
from lmstack.chat.types import Message, ToolCall

FORMAT = """Answer the question. You can use these tools:
{tools}

Use exactly this format:
Thought: what you should do next
Action: one tool name from [{names}]
Action Input: the tool's arguments as a JSON object
Observation: the tool's result (it will be given to you; do not write it)
... (Thought / Action / Action Input / Observation may repeat)
Thought: I now know the answer
Final Answer: the answer to the question"""

_LABEL = r"(?:^|\n)\s*[*_#]*\s*{}\s*[*_]*\s*:[*_]*[ \t]*"
_THOUGHT = re.compile(_LABEL.format("thought"), re.IGNORECASE)
_ACTION = re.compile(_LABEL.format("action"), re.IGNORECASE)
_INPUT = re.compile(_LABEL.format(r"action[ _]input"), re.IGNORECASE)
_FINAL = re.compile(_LABEL.format(r"final[ _]answer"), re.IGNORECASE)
_OBSERVATION = re.compile(_LABEL.format("observation"), re.IGNORECASE)
_CALL = re.compile(r"^([A-Za-z_][\w.-]*)\s*\((.*)\)\s*$", re.DOTALL)
_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")


@dataclass
class ReactStep:
    """What one reply says: an action to run, a final answer, or why it could not be read."""

    thought: str = ""
    action: str | None = None
    arguments: dict[str, Any] | None = None
    final: str | None = None
    error: str | None = None


def _section(text: str, start: re.Match, ends: Sequence[re.Pattern]) -> str:
    """The text after a label, up to the next label of the given kinds."""
    rest = text[start.end():]
    cut = min((m.start() for p in ends if (m := p.search(rest))), default=len(rest))
    return rest[:cut].strip()


def _arguments(raw: str) -> dict[str, Any] | None:
    """A JSON object, a Python-literal dict (single quotes) or `a=1, b="x"`; None if none."""
    raw = _FENCE.sub("", raw.strip()).strip()
    if not raw:
        return {}
    if raw.startswith("{"):
        end = raw.rfind("}")
        raw = raw[:end + 1] if end >= 0 else raw
    for parse in (json.loads, ast.literal_eval):  # literal_eval evaluates literals only
        try:
            value = parse(raw)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(value, dict):
            return value
    try:  # keyword style: a=1, b="two" -> parsed as a call's keywords, literals only
        call = ast.parse(f"f({raw})", mode="eval").body
        if isinstance(call, ast.Call) and not call.args and call.keywords:
            return {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg}
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    return None


def parse_react(text: str) -> ReactStep:
    """Read one ReAct reply (see the module docstring for what is tolerated)."""
    observation = _OBSERVATION.search(text)
    if observation:  # the model wrote its own observation: everything after it is invented
        text = text[:observation.start()]
    step = ReactStep()
    if m := _THOUGHT.search(text):
        step.thought = _section(text, m, [_ACTION, _INPUT, _FINAL])
    action, final = _ACTION.search(text), _FINAL.search(text)
    # An action written before a final answer has not been run yet: it wins.
    if action and (final is None or action.start() < final.start()):
        name = _section(text, action, [_INPUT, _FINAL, _THOUGHT]).strip("`*\"' ")
        args_text = ""
        if inline := _CALL.match(name):  # Action: tool(...) with the arguments inline
            name, args_text = inline.group(1), inline.group(2)
        elif m := _INPUT.search(text):
            args_text = _section(text, m, [_FINAL, _THOUGHT, _ACTION])
        step.action = name.split()[0] if name else None
        step.arguments = _arguments(args_text)
        if not step.action:
            step.error = "the Action line names no tool"
        elif step.arguments is None:
            step.error = (f"the Action Input for {step.action!r} is not a JSON object; write "
                          'it like {"name": value}')
        return step
    if final:
        step.final = _section(text, final, [_THOUGHT, _ACTION])
        return step
    step.error = ("no 'Action:' or 'Final Answer:' line; answer with 'Final Answer: ...' or "
                  "call a tool with 'Action:' and 'Action Input:'")
    return step


def react_prompt(registry: ToolRegistry) -> str:
    lines = []
    for schema in registry.schemas():
        fn = schema["function"]
        args = json.dumps(fn["parameters"].get("properties", {}), ensure_ascii=False)
        lines.append(f"- {fn['name']}: {fn['description']} Arguments: {args}")
    return FORMAT.format(tools="\n".join(lines) or "(none)", names=", ".join(registry.names()))


def run_react(model: ChatModel, question: str, registry: ToolRegistry, *,
              budget: Budget | None = None, trace: Trace | None = None, agent: str = "react",
              system: str | None = None, **sampling: Any) -> AgentRun:
    """The ReAct loop over any ChatModel (no `tools` are sent: the protocol is the text)."""
    budget = budget or Budget()
    trace = trace if trace is not None else Trace()
    sampling.setdefault("stop", ["\nObservation:"])  # let the tool write the observation
    prompt = react_prompt(registry) + (f"\n\n{system}" if system else "")
    history = [Message("system", prompt), Message("user", question)]
    done: list[ToolStep] = []
    tokens = 0
    for n in range(1, budget.max_steps + 1):
        reply = ask(model, history, trace, agent, n, **sampling)
        tokens += reply.usage.total_tokens
        step = parse_react(reply.content)
        history.append(Message("assistant", reply.content))
        if step.final is not None:
            trace.event("answer", agent, step=n, content=step.final, thought=step.thought)
            return AgentRun(step.final, "answer", n, history, done, tokens)
        if step.error is not None:
            observation = f"error: {step.error}"
        else:
            call = ToolCall(step.action, json.dumps(step.arguments, ensure_ascii=False))
            observation = registry.run(call)
            done.append(ToolStep(call, observation))
        trace.event("tool", agent, step=n, name=step.action, arguments=step.arguments,
                    observation=observation, thought=step.thought)
        history.append(Message("user", f"Observation: {observation}"))
        if over_budget(budget, tokens):
            trace.event("stop", agent, step=n, reason="token_limit", tokens=tokens)
            return AgentRun(None, "token_limit", n, history, done, tokens)
    trace.event("stop", agent, step=budget.max_steps, reason="step_limit")
    return AgentRun(None, "step_limit", budget.max_steps, history, done, tokens)
