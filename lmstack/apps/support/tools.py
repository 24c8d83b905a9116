"""The support tools: typed functions over the database and the policy (see lmstack.agent)."""

from __future__ import annotations

from typing import Literal

from lmstack.agent.tools import ToolRegistry, tool
from lmstack.apps.support.db import SupportDB
from lmstack.apps.support.policy import Policy, refund_decision


def order_tools(db: SupportDB) -> ToolRegistry:
    @tool
    def lookup_order(order_id: str) -> dict:
        """Look up an order: item, category, amount, status and dates.

        Args:
            order_id: the order number, like A-1001.
        """
        order = db.order(order_id)
        if order is None:
            raise ValueError(f"no order {order_id!r}; order numbers look like A-1001")
        return {k: order[k] for k in ("id", "customer", "item", "category", "amount",
                                      "status", "ordered_on", "delivered_on")}

    @tool
    def check_refund_eligibility(order_id: str, damaged: bool = False) -> dict:
        """Decide whether an order can be refunded under the refund policy.

        Args:
            order_id: the order number, like A-1001.
            damaged: true if the item arrived damaged or is not what was ordered.
        """
        order = db.order(order_id)
        if order is None:
            raise ValueError(f"no order {order_id!r}; order numbers look like A-1001")
        eligible, reason = refund_decision(order, db.today, damaged)
        return {"order_id": order["id"], "eligible": eligible, "reason": reason}

    @tool
    def create_ticket(order_id: str, subject: str, details: str = "") -> dict:
        """Open a support ticket about an order (every refund or return request needs one).

        Args:
            order_id: the order number, like A-1001.
            subject: a short summary, e.g. "Refund request".
            details: what the customer said.
        """
        if db.order(order_id) is None:
            raise ValueError(f"no order {order_id!r}; order numbers look like A-1001")
        return {"ticket_id": db.create_ticket(order_id.strip().upper(), subject, details),
                "status": "open"}

    @tool
    def update_ticket(ticket_id: int, status: Literal["open", "pending", "resolved"],
                      note: str = "") -> dict:
        """Change a ticket's status and add a note.

        Args:
            ticket_id: the ticket number.
            status: open, pending (waiting for the customer) or resolved.
            note: what changed.
        """
        if not db.update_ticket(ticket_id, status, note):
            raise ValueError(f"no ticket {ticket_id}")
        return {"ticket_id": ticket_id, "status": status}

    return ToolRegistry([lookup_order, check_refund_eligibility, create_ticket, update_ticket])


def policy_tools(policy: Policy) -> ToolRegistry:
    @tool
    def search_policy(question: str) -> list[dict]:
        """Find the refund and return policy sections that answer a question.

        Args:
            question: what the customer wants to know, in their words.
        """
        found = policy.search(question)
        if not found:
            return [{"section": "(none)", "text": "The policy does not cover this."}]
        return [{"section": s.title, "text": s.text} for s in found]

    return ToolRegistry([search_policy])
