"""Data-test fixtures live in data_helpers (a unique module name: tests/train has its own)."""

from data_helpers import tokenizer  # noqa: F401
