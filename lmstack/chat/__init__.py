"""The ChatModel seam: message and tool-call types, the protocol, and an OpenAI-API client.

No torch here: RAG and agents import this to talk to a model, local (lmstack.engine's
EngineChatModel) or remote (OpenAIChatModel), without loading one.
"""

from lmstack.chat.openai_client import OpenAIChatModel
from lmstack.chat.protocol import ChatModel
from lmstack.chat.tool_calls import parse_tool_calls
from lmstack.chat.types import ChatError, ChatResult, Message, ToolCall, Usage, to_wire

__all__ = ["ChatError", "ChatModel", "ChatResult", "Message", "OpenAIChatModel", "ToolCall",
           "Usage", "parse_tool_calls", "to_wire"]
