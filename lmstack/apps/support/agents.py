"""The support team: a supervisor that hands order questions to an order agent (database
tools) and policy questions to a policy agent (retrieval over the policy), over any ChatModel:
an OpenAI-compatible endpoint when one is configured, otherwise lmstack's own model."""

from __future__ import annotations

from lmstack.agent.supervisor import Specialist, Supervisor
from lmstack.agent.trace import Budget
from lmstack.apps.support.db import SupportDB
from lmstack.apps.support.policy import Policy
from lmstack.apps.support.tools import order_tools, policy_tools
from lmstack.chat.protocol import ChatModel

SUPERVISOR = ("You are the customer-service desk of an online shop. For anything about a "
              "specific order (status, refund, return, a ticket) call order_agent with the "
              "order number and the customer's request. For general questions about refunds "
              "and returns call policy_agent. Then answer the customer briefly and politely.")
ORDER_AGENT = ("You handle orders. Look the order up, check refund eligibility with the tool "
               "(never decide it yourself), open a ticket for every refund or return request, "
               "and reply with the facts and the ticket number.")
POLICY_AGENT = ("You answer questions about the refund and return policy. Search the policy "
                "and answer only from what it says, naming the section.")


def support_team(model: ChatModel, db: SupportDB, policy: Policy | None = None,
                 max_steps: int = 6) -> Supervisor:
    policy = policy or Policy()
    budget = Budget(max_steps=max_steps)
    return Supervisor(model, [
        Specialist("order_agent", "Anything about a specific order: status, refund, return, "
                   "tickets. Give the order number and the request.", model, order_tools(db),
                   ORDER_AGENT, budget),
        Specialist("policy_agent", "General questions about the refund and return policy.",
                   model, policy_tools(policy), POLICY_AGENT, budget),
    ], system=SUPERVISOR, budget=budget)
