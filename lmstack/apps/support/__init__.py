"""The customer-service system: orders and tickets in SQLite, a refund policy read by
retrieval, and a supervisor with an order agent and a policy agent (`lmstack apps support`)."""

from lmstack.apps.support.agents import support_team
from lmstack.apps.support.db import SupportDB
from lmstack.apps.support.policy import Policy

__all__ = ["Policy", "SupportDB", "support_team"]
