"""A scripted ChatModel and a small passage set for the pipeline and kb tests."""

from __future__ import annotations

from lmstack.chat.types import ChatResult, Message
from lmstack.rag.retriever import BM25Retriever, Passage

DOCS = {
    "python.md": "Python uses indentation to group statements.\n\nThe len() function returns "
                 "the number of items in a container.",
    "rust.md": "Rust checks ownership and borrowing at compile time.",
    "tea.txt": "Green tea is steeped in water below boiling, near 80 degrees.",
}


def passages() -> list[Passage]:
    out = []
    for source, text in DOCS.items():
        for part in text.split("\n\n"):
            start = text.index(part)
            out.append(Passage(len(out), part, source, start, start + len(part)))
    return out


def bm25() -> BM25Retriever:
    return BM25Retriever(passages())


class ScriptedChat:
    """Replies with a fixed text (streamed a few characters at a time); records the prompts."""

    def __init__(self, reply: str) -> None:
        self.reply, self.prompts = reply, []

    def chat(self, messages, tools=None, **sampling):
        self.prompts.append(messages)
        return ChatResult(Message("assistant", self.reply), "stop")

    def stream(self, messages, tools=None, **sampling):
        self.prompts.append(messages)
        for i in range(0, len(self.reply), 5):
            yield self.reply[i:i + 5]
