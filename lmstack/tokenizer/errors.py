"""The one exception the tokenizer package raises for mistakes a user can fix.

Follows the house rule in DESIGN.md: a clear message that names the fix.
"""

from __future__ import annotations


class TokenizerError(ValueError):
    """A bad tokenizer folder, file, argument or template; the message says how to fix it."""
