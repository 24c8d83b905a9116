"""Plan-and-execute and reflection: think before acting, check before answering.

Plan-and-execute (Wang et al. 2023, "Plan-and-Solve Prompting"; LangChain's plan-and-execute
agent): one call writes a short plan, each step runs as its own tool-calling loop that sees
the results so far, and a last call writes the answer from them. Small models lose the thread
in one long loop; one short goal at a time keeps each prompt focused.
Reflection (Shinn et al. 2023, "Reflexion"; Madaan et al. 2023, "Self-Refine"): the model
reads its own answer against the task and either approves it or writes a corrected one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from lmstack.agent.loop import AgentRun, ask, run_tools
from lmstack.agent.tools import ToolRegistry
from lmstack.agent.trace import Budget, Trace
from lmstack.chat.protocol import ChatModel
from lmstack.chat.types import Message

PLAN_PROMPT = ("Break the task into at most {n} short steps that tools can carry out. Reply "
               "with only a JSON list of strings, one per step.\n\nTask: {task}")
STEP_PROMPT = ("You are carrying out one step of a plan for this task: {task}\n"
               "Results of the earlier steps:\n{results}\nDo only this step and reply with "
               "its result.")
ANSWER_PROMPT = ("Task: {task}\n\nResults of the plan's steps:\n{results}\n\nUsing these "
                 "results, write the final answer to the task.")
REFLECT_PROMPT = ("Task: {task}\n\nProposed answer: {answer}\n\nCheck the answer against the "
                  "task. If it is correct and complete, reply with exactly OK. Otherwise reply "
                  "with only the corrected answer.")
_NUMBERED = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s+(.*\S)", re.MULTILINE)


def parse_plan(text: str, max_steps: int) -> list[str]:
    """A JSON list of strings, or else numbered / bulleted lines; at most max_steps."""
    start, end = text.find("["), text.rfind("]")
    if 0 <= start < end:
        try:
            steps = json.loads(text[start:end + 1])
            if isinstance(steps, list) and all(isinstance(s, str) for s in steps):
                return [s.strip() for s in steps if s.strip()][:max_steps]
        except json.JSONDecodeError:
            pass
    lines = _NUMBERED.findall(text) or [text.strip()]
    return [line for line in lines if line][:max_steps]


@dataclass
class PlanRun:
    answer: str | None
    stopped: str  # "answer", or why a step's loop stopped ("step_limit", "token_limit")
    plan: list[str]
    results: list[str] = field(default_factory=list)
    step_runs: list[AgentRun] = field(default_factory=list)
    revised: bool = False  # reflection replaced the first answer


def reflect(model: ChatModel, task: str, answer: str, trace: Trace, agent: str = "reflect",
            **sampling: Any) -> tuple[str, bool]:
    """(the answer to keep, whether it was revised): the model approves with OK or rewrites."""
    reply = ask(model, [Message("user", REFLECT_PROMPT.format(task=task, answer=answer))],
                trace, agent, 1, **sampling).content.strip()
    if not reply or reply.rstrip(".!").upper() == "OK":
        return answer, False
    trace.event("revise", agent, before=answer, after=reply)
    return reply, True


def plan_and_execute(model: ChatModel, task: str, registry: ToolRegistry, *,
                     max_plan_steps: int = 4, budget: Budget | None = None,
                     trace: Trace | None = None, agent: str = "planner",
                     reflection: bool = False, **sampling: Any) -> PlanRun:
    """Plan, run each step as a tool loop (each under `budget`), answer, optionally reflect."""
    budget = budget or Budget()
    trace = trace if trace is not None else Trace()
    reply = ask(model, [Message("user", PLAN_PROMPT.format(n=max_plan_steps, task=task))],
                trace, agent, 0, **sampling)
    plan = parse_plan(reply.content, max_plan_steps)
    trace.event("plan", agent, steps=plan)
    run = PlanRun(None, "answer", plan)
    for i, goal in enumerate(plan, 1):
        results = _numbered(run.results) or "(none yet)"
        messages = [Message("system", STEP_PROMPT.format(task=task, results=results)),
                    Message("user", goal)]
        step = run_tools(model, messages, registry, budget=budget, trace=trace,
                         agent=f"{agent}.step{i}", **sampling)
        run.step_runs.append(step)
        if step.answer is None:  # the budget ran out inside a step: stop, say why
            run.stopped = step.stopped
            return run
        run.results.append(step.answer)
    final = ask(model, [Message("user", ANSWER_PROMPT.format(
        task=task, results=_numbered(run.results)))], trace, agent, len(plan) + 1, **sampling)
    run.answer = final.content
    if reflection:
        run.answer, run.revised = reflect(model, task, run.answer, trace, **sampling)
    trace.event("answer", agent, content=run.answer)
    return run


def _numbered(items: list[str]) -> str:
    return "\n".join(f"{i}. {text}" for i, text in enumerate(items, 1))
