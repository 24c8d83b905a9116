"""The knowledge-base assistant: ingest a folder into a persistent KB (SQLite store + vector
index), then ask it in the terminal or on a web page, with answers citing their sources."""

from lmstack.apps.kb.knowledge_base import KnowledgeBase

__all__ = ["KnowledgeBase"]
