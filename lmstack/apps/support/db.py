"""Customers, orders and tickets in one SQLite file, created with sample data.

Every statement is parameterised (a customer's message reaches these queries through a model's
tool arguments: a quote in it must stay data) and every write is one transaction.
"""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS customers (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id),
    item TEXT NOT NULL, category TEXT NOT NULL, amount REAL NOT NULL,
    final_sale INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL,
    ordered_on TEXT NOT NULL, delivered_on TEXT);
CREATE TABLE IF NOT EXISTS tickets (
    id INTEGER PRIMARY KEY AUTOINCREMENT, order_id TEXT REFERENCES orders(id),
    subject TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'open', notes TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL, updated TEXT NOT NULL);
"""
TICKET_STATUSES = ("open", "pending", "resolved")


def sample_orders(today: date) -> list[tuple]:
    """Orders relative to `today`, so every policy rule has a live example whenever it runs."""
    def ago(days: int) -> str:
        return (today - timedelta(days=days)).isoformat()

    return [  # id, customer, item, category, amount, final sale, status, ordered, delivered
        ("A-1001", 1, "Wool sweater", "clothing", 59.0, 0, "delivered", ago(12), ago(9)),
        ("A-1002", 1, "Noise-cancelling headphones", "electronics", 199.0, 0, "delivered",
         ago(25), ago(20)),
        ("A-1003", 2, "Python e-book", "digital", 25.0, 0, "delivered", ago(3), ago(3)),
        ("A-1004", 2, "Running shoes", "clothing", 89.0, 0, "shipped", ago(2), None),
        ("A-1005", 3, "Desk lamp", "home", 35.0, 1, "delivered", ago(6), ago(4)),
        ("A-1006", 3, "Mechanical keyboard", "electronics", 120.0, 0, "delivered", ago(8), ago(5)),
        ("A-1007", 1, "Rain jacket", "clothing", 75.0, 0, "delivered", ago(50), ago(45)),
    ]


class SupportDB:
    def __init__(self, path: str | Path, today: date | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.today = today or date.today()
        with self.db:
            self.db.executescript(SCHEMA)

    def seed(self) -> SupportDB:
        """Sample customers and orders (again: replaced, so a demo always starts the same)."""
        with self.db:
            self.db.execute("DELETE FROM tickets")
            self.db.execute("DELETE FROM orders")
            self.db.execute("DELETE FROM customers")
            self.db.executemany("INSERT INTO customers VALUES (?, ?, ?)", [
                (1, "Ana Silva", "ana@example.com"), (2, "Wei Zhang", "wei@example.com"),
                (3, "Sam Okafor", "sam@example.com")])
            self.db.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                sample_orders(self.today))
        return self

    def close(self) -> None:
        self.db.close()

    def order(self, order_id: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT o.*, c.name AS customer, c.email FROM orders o JOIN customers c ON "
            "c.id = o.customer_id WHERE o.id = ?", (order_id.strip().upper(),)).fetchone()
        return dict(row) if row else None

    def create_ticket(self, order_id: str | None, subject: str, notes: str = "") -> int:
        now = datetime.now().isoformat(timespec="seconds")
        with self.db:
            cur = self.db.execute(
                "INSERT INTO tickets (order_id, subject, notes, created, updated) VALUES "
                "(?, ?, ?, ?, ?)", (order_id, subject, notes, now, now))
        return int(cur.lastrowid)

    def update_ticket(self, ticket_id: int, status: str, note: str = "") -> bool:
        if status not in TICKET_STATUSES:
            raise ValueError(f"status must be one of {', '.join(TICKET_STATUSES)}")
        now = datetime.now().isoformat(timespec="seconds")
        with self.db:
            cur = self.db.execute(
                "UPDATE tickets SET status = ?, notes = notes || ? , updated = ? WHERE id = ?",
                (status, f"\n{note}" if note else "", now, ticket_id))
        return cur.rowcount == 1

    def ticket(self, ticket_id: int) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM tickets WHERE id = ?", (ticket_id,)).fetchone()
        return dict(row) if row else None
