"""The refund policy as a small knowledge base: sections retrieved by BM25 (the policy agent's
RAG), and the same rules applied to an order (the order agent's eligibility check).

The rules are code so that eligibility is exact (a model must not do date arithmetic on a
refund), and the policy text is retrieved so that answers quote what the customer agreed to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from lmstack.retrieve.bm25 import BM25, tokenize

POLICY_FILE = Path(__file__).with_name("policy.md")
WINDOW_DAYS = {"electronics": 14}  # by category; everything else 30
DEFAULT_WINDOW, DAMAGED_WINDOW = 30, 60
NON_REFUNDABLE = {"digital"}


@dataclass
class Section:
    title: str
    text: str


class Policy:
    """Sections of a markdown policy (## headings), searchable by BM25."""

    def __init__(self, text: str | None = None):
        text = POLICY_FILE.read_text(encoding="utf-8") if text is None else text
        parts = re.split(r"^## +", text, flags=re.MULTILINE)[1:]
        self.sections = [Section(*(p.split("\n", 1) + [""])[:2]) for p in parts]
        self.sections = [Section(s.title.strip(), " ".join(s.text.split()))
                         for s in self.sections]
        self.bm25 = BM25([tokenize(f"{s.title} {s.text}") for s in self.sections])

    def search(self, question: str, k: int = 2) -> list[Section]:
        return [self.sections[i] for i, score in self.bm25.search(tokenize(question), k)
                if score > 0]


def refund_decision(order: dict, today: date, damaged: bool = False) -> tuple[bool, str]:
    """(eligible, the reason, naming the policy section it follows)."""
    if order["status"] != "delivered":
        return True, ("not delivered yet: it can be cancelled for a full refund "
                      "(Who can get a refund)")
    days = (today - date.fromisoformat(order["delivered_on"])).days
    if damaged:
        ok = days <= DAMAGED_WINDOW
        return ok, (f"damaged or wrong item, delivered {days} days ago; the limit is "
                    f"{DAMAGED_WINDOW} days (Damaged or wrong items)")
    if order["category"] in NON_REFUNDABLE or order["final_sale"]:
        return False, ("digital goods and final-sale items cannot be refunded (What cannot "
                       "be refunded)")
    window = WINDOW_DAYS.get(order["category"], DEFAULT_WINDOW)
    section = "Electronics" if order["category"] == "electronics" else "Who can get a refund"
    return days <= window, (f"delivered {days} days ago; the limit for {order['category']} is "
                            f"{window} days ({section})")
