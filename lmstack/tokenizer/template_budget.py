"""A render budget for untrusted chat templates: time, executed template lines, output size.

Jinja's sandbox (which we use) caps one `range()` at 100,000 but not nested loops, nor `'a' *
10**8`; vLLM and transformers render without limits. Here a template that runs too long or
builds too much raises TemplateBudgetError, which callers turn into a refusal.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from typing import Any

from jinja2.sandbox import ImmutableSandboxedEnvironment

from lmstack.tokenizer.errors import TokenizerError

MAX_SECONDS = 0.5  # a real chat template renders a long conversation in milliseconds
MAX_LINES = 2_000_000  # template lines executed: nested loops multiply
MAX_CHARS = 4_000_000  # one built string, and the rendered prompt
# A format width with seven or more digits ('%9999999s', '{:>9999999}') builds megabytes.
_HUGE_PERCENT_WIDTH = re.compile(r"%[-+ #0]*\d{7,}")
_HUGE_BRACE_WIDTH = re.compile(r"\{[^{}]*:[^{}]*\d{7,}[^{}]*\}")
TEMPLATE_FILE = "<template>"  # the file name Jinja compiles template code under


class TemplateBudgetError(TokenizerError):
    """The template ran past its time, line or size budget."""


def _check_size(n: int, what: str) -> None:
    if n > MAX_CHARS:
        raise TemplateBudgetError(f"the chat template would build {what} of {n:,} items "
                                  f"(the limit is {MAX_CHARS:,})")


def _check_args(args: tuple, kwargs: dict) -> None:
    # Sizes passed as numbers: center(10**9), indent(10**9), ljust(10**9).
    for value in (*args, *kwargs.values()):
        if isinstance(value, int) and not isinstance(value, bool):
            _check_size(abs(value), "a value")


def _check_format(template: Any, pattern: re.Pattern) -> None:
    if isinstance(template, str) and pattern.search(template):
        raise TemplateBudgetError("the chat template asked for a huge format width")


class BudgetedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, plus checks on the operations that build large values."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int):
                    _check_size(len(seq) * times, "a repeated value")
        elif operator == "**" and isinstance(right, int) and abs(right) > 1024:
            raise TemplateBudgetError("the chat template raised a number to a huge power")
        elif operator == "%":
            _check_format(left, _HUGE_PERCENT_WIDTH)
        return super().call_binop(context, operator, left, right)

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        _check_args(args, kwargs)
        if getattr(obj, "__name__", "") in ("format", "format_map"):
            # The sandbox hands out str.format wrapped; the string sits on the wrapped method.
            bound = getattr(obj, "__wrapped__", obj)
            _check_format(getattr(bound, "__self__", None), _HUGE_BRACE_WIDTH)
        return super().call(context, obj, *args, **kwargs)


def guard_filters(filters: dict[str, Callable]) -> None:
    """Wrap every filter with the argument check (filters are called directly, not via
    `call`, so `'a' | center(10**9)` would otherwise bypass it)."""
    for name, fn in list(filters.items()):
        def guarded(*args: Any, _fn: Callable = fn, _name: str = name, **kwargs: Any) -> Any:
            _check_args(args[1:], kwargs)  # args[0] is the value being filtered
            if _name == "format" and args:
                _check_format(args[0], _HUGE_PERCENT_WIDTH)
            return _fn(*args, **kwargs)

        # Jinja passes context/environment to filters marked for it (jinja_pass_arg).
        guarded.__dict__.update(getattr(fn, "__dict__", {}))
        filters[name] = guarded


def render_within_budget(render: Callable[[], str]) -> str:
    """Run `render` on this thread, stopping it once it passes the budget. Counting is done
    by a line tracer confined to template code, so loops with no calls are counted too."""
    deadline = time.perf_counter() + MAX_SECONDS
    lines = 0

    def on_line(frame: Any, event: str, arg: Any) -> Any:
        nonlocal lines
        if event == "line":
            lines += 1
            if lines > MAX_LINES:
                raise TemplateBudgetError(f"the chat template ran more than {MAX_LINES:,} "
                                          "steps (nested loops?)")
            if lines % 4096 == 0 and time.perf_counter() > deadline:
                raise TemplateBudgetError(f"the chat template took longer than {MAX_SECONDS}s "
                                          "to render")
        return on_line

    def on_call(frame: Any, event: str, arg: Any) -> Any:
        # Only template code is traced line by line; Python helpers run at full speed.
        return on_line if frame.f_code.co_filename == TEMPLATE_FILE else None

    previous = sys.gettrace()
    sys.settrace(on_call)
    try:
        text = render()
    finally:
        sys.settrace(previous)
    _check_size(len(text), "a prompt")
    return text
