"""Agents: tools built from typed Python functions, and the loops that let a ChatModel call them.

Light on purpose: nothing here imports torch; a model is reached only through lmstack.chat.
"""

from lmstack.agent.tools import Tool, ToolRegistry, tool

__all__ = ["Tool", "ToolRegistry", "tool"]
