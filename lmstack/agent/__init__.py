"""Agents: tools built from typed Python functions, and the loops that let a ChatModel call them.

Light on purpose: nothing here imports torch; a model is reached only through lmstack.chat.
"""

from lmstack.agent.loop import AgentRun, ToolStep, run_tools
from lmstack.agent.tools import Tool, ToolRegistry, tool

__all__ = ["AgentRun", "Tool", "ToolRegistry", "ToolStep", "run_tools", "tool"]
