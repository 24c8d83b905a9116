"""A chat template cannot freeze or flood the process: nested loops, huge repeats, huge
widths and slow renders stop with TemplateBudgetError; ordinary templates are untouched."""

from __future__ import annotations

import time

import pytest

from lmstack.tokenizer.chat_template import CHATML_TEMPLATE, render_chat_template
from lmstack.tokenizer.template_budget import TemplateBudgetError

CHAT = [{"role": "user", "content": "hi"}]
HOSTILE = [
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% set r = range(100000) | list %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}",
    "{{ 'a' * 100000000 }}",
    "{{ 'a' | center(1000000000) }}",
    "{{ 'a'.ljust(1000000000) }}",
    "{{ '%1000000000s' | format('a') }}",
    "{{ '%1000000000s' % 'a' }}",
    "{{ '{:>1000000000}'.format('a') }}",
    "{{ 7 ** 100000000 }}",
    ("{% set ns = namespace(s='') %}{% for i in range(100000) %}"
     "{% set ns.s = ns.s ~ 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' %}{% endfor %}{{ ns.s }}"),
]


@pytest.mark.parametrize("template", HOSTILE)
def test_hostile_templates_stop_within_the_budget(template):
    start = time.perf_counter()
    with pytest.raises(TemplateBudgetError):
        render_chat_template(template, CHAT)
    assert time.perf_counter() - start < 5  # the budget is 0.5 s; the slack is for busy CPUs


def test_ordinary_templates_render_as_before():
    text = render_chat_template(CHATML_TEMPLATE, CHAT * 50, add_generation_prompt=True)
    assert text.count("<|im_start|>user\nhi<|im_end|>") == 50
    assert render_chat_template("{{ '%5s|{:>3}' | format('a') }}", CHAT) == "    a|{:>3}"
    assert render_chat_template("{{ '{:>3}'.format('a') ~ 'x' * 3 }}", CHAT) == "  axxx"
