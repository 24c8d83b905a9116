"""Agents: tools built from typed Python functions, and the loops that let a ChatModel call them.

Light on purpose: nothing here imports torch or numpy; a model is reached only through
lmstack.chat, an embedding (for memory recall) only through a function passed in.
"""

from lmstack.agent.loop import AgentRun, ToolStep, arun_tools, run_tools
from lmstack.agent.memory import SessionMemory
from lmstack.agent.plan import PlanRun, plan_and_execute, reflect
from lmstack.agent.react import parse_react, run_react
from lmstack.agent.supervisor import Specialist, Supervisor
from lmstack.agent.tools import Tool, ToolRegistry, tool
from lmstack.agent.trace import Budget, Trace, read_trace

__all__ = ["AgentRun", "Budget", "PlanRun", "SessionMemory", "Specialist", "Supervisor", "Tool",
           "ToolRegistry", "ToolStep", "Trace", "arun_tools", "parse_react", "plan_and_execute",
           "read_trace", "reflect", "run_react", "run_tools", "tool"]
