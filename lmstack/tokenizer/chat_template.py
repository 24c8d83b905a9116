"""Chat templates: the ChatML default and a sandboxed renderer for a model's own Jinja template.

Follows the Hugging Face chat-templating convention (transformers `apply_chat_template`) and
OpenAI's ChatML message format (`<|im_start|>role\\ncontent<|im_end|>`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any, ClassVar

import jinja2
import jinja2.ext
import jinja2.nodes

from lmstack.tokenizer.errors import TokenizerError
from lmstack.tokenizer.template_budget import (
    BudgetedSandbox,
    guard_filters,
    render_within_budget,
)

# How tools are listed in the system turn. JSON is the full schema, one per line (what most
# Hub templates do); signatures are one line per tool, `name(arg: type, ...): description`,
# about a fifth of the tokens, for small models that learn the format and would otherwise
# spend most of each training example re-reading schemas.
TOOLS_AS_JSON = "{%- for tool in tools -%}{{ '\\n' + (tool | tojson) }}{%- endfor -%}"
TOOLS_AS_SIGNATURES = (
    "{%- for tool in tools -%}"
    "{%- set f = tool['function'] if tool['function'] is defined else tool -%}"
    "{%- set params = f['parameters'] if f['parameters'] is mapping else {} -%}"
    "{%- set required = params['required'] if params['required'] is defined else [] -%}"
    "{{ '\\n' + f['name'] + '(' }}"
    "{%- for name, spec in (params['properties'] or {}).items() -%}"
    "{{ name + ('' if name in required else '?') + ': ' }}"
    "{%- if spec['enum'] is defined -%}{{ spec['enum'] | map('tojson') | join('|') }}"
    "{%- elif spec['type'] is string -%}{{ spec['type'] }}"
    "{%- elif spec['type'] is defined -%}{{ spec['type'] | join('|') }}"
    "{%- else -%}any{%- endif -%}"
    "{{ ', ' if not loop.last else '' }}"
    "{%- endfor -%}"
    "{{ ')' }}"
    "{%- if f['description'] -%}{{ ': ' + f['description'].strip().split('\\n')[0] }}"
    "{%- endif -%}"
    "{%- endfor -%}"
)


def chatml_template(tool_list: str = TOOLS_AS_JSON) -> str:
    """ChatML with tools: when given, they go into the system turn (listed by `tool_list`);
    an assistant turn's tool calls are written as
    <tool_call>{"name": ..., "arguments": {...}}</tool_call>.
    The template is written on one logical line so that no stray newline reaches the output."""
    return (
        "{%- if tools -%}"
        "{{ '<|im_start|>system\\n' }}"
        "{%- if messages and messages[0]['role'] == 'system' -%}"
        "{{ messages[0]['content'] + '\\n\\n' }}"
        "{%- endif -%}"
        '{{ \'# Tools\\n\\nTo call a tool, answer with <tool_call>{"name": ..., "arguments": {...}}'
        "</tool_call>. Available tools:\\n<tools>' }}"
        + tool_list +
        "{{ '\\n</tools><|im_end|>\\n' }}"
        "{%- endif -%}"
        "{%- for message in messages -%}"
        "{%- if not (tools and loop.first and message['role'] == 'system') -%}"
        "{%- set text -%}"
        "{%- if message['content'] is string -%}{{ message['content'] }}"
        "{%- elif message['content'] is defined -%}"
        "{%- for part in message['content'] if part['type'] == 'text' -%}{{ part['text'] }}{%- endfor -%}"
        "{%- endif -%}"
        "{%- endset -%}"
        "{{ '<|im_start|>' + message['role'] + '\\n' + text }}"
        "{%- for call in message['tool_calls'] or [] -%}"
        "{%- set call = call['function'] if call['function'] is defined else call -%}"
        "{%- set args = call['arguments'] -%}"
        "{{ ('\\n' if text or not loop.first else '') + '<tool_call>\\n{\"name\": ' }}"
        "{{- (call['name'] | tojson) + ', \"arguments\": ' -}}"
        "{{- args if args is string else (args | tojson) -}}"
        "{{ '}\\n</tool_call>' }}"
        "{%- endfor -%}"
        "{{ '<|im_end|>\\n' }}"
        "{%- endif -%}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
    )


# The default for models that ship no template of their own (and for the BPE tokenizers we
# train).
CHATML_TEMPLATE = chatml_template()


class _GenerationTag(jinja2.ext.Extension):
    """Accept `{% generation %}...{% endgeneration %}` and render its body unchanged.

    Some Hub templates mark the assistant's tokens with this tag (transformers uses it for an
    assistant-token mask); without the extension such templates would not even compile.
    """

    tags: ClassVar[set[str]] = {"generation"}

    def parse(self, parser: jinja2.parser.Parser) -> jinja2.nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller: Callable[[], str]) -> str:
        return caller()


def _raise_exception(message: str) -> None:
    # Templates call this to reject conversations they cannot render (e.g. roles out of order).
    raise jinja2.exceptions.TemplateError(message)


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    # Jinja's own tojson HTML-escapes <, >, & and ' which would corrupt prompts; HF templates
    # expect plain json.dumps with non-ASCII kept as is.
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


@lru_cache(maxsize=32)
def compile_chat_template(template: str) -> jinja2.Template:
    """Compile a template once; Hub templates are untrusted code, hence the immutable sandbox
    (with a budget on what the template may build; see template_budget.py)."""
    # trim_blocks/lstrip_blocks and the helpers below are what Hub templates are written against.
    env = BudgetedSandbox(
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[_GenerationTag, jinja2.ext.loopcontrols],
    )
    env.filters["tojson"] = _tojson
    guard_filters(env.filters)
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    try:
        return env.from_string(template)
    except jinja2.TemplateSyntaxError as err:
        raise TokenizerError(
            f"The chat template does not compile (line {err.lineno}: {err.message}). Fix the "
            "Jinja syntax in tokenizer_config.json 'chat_template' or chat_template.jinja."
        ) from err


def _plain(value: Any) -> Any:
    # Templates see only JSON-like data: pydantic models and dataclasses become dicts, so the
    # sandbox never has to judge the methods of arbitrary objects.
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence):
        return [_plain(v) for v in value]
    if hasattr(value, "model_dump"):
        return _plain(value.model_dump())
    if hasattr(value, "__dataclass_fields__"):
        return _plain({name: getattr(value, name) for name in value.__dataclass_fields__})
    raise TokenizerError(
        f"Chat messages and tools must hold JSON-like data, got {type(value).__name__}. "
        "Pass dicts, lists, strings and numbers (convert other objects first)."
    )


def render_chat_template(
    template: str,
    messages: Sequence[Mapping[str, Any]],
    *,
    add_generation_prompt: bool = False,
    tools: Sequence[Mapping[str, Any]] | None = None,
    documents: Sequence[Mapping[str, Any]] | None = None,
    special_tokens: Mapping[str, str] | None = None,
    **extra: Any,
) -> str:
    """Render one conversation the way transformers' `apply_chat_template(tokenize=False)` does.

    `special_tokens` (bos_token, eos_token, ...) become template variables; `extra` too, and it
    wins over them, as in transformers.
    """
    if not messages:
        raise TokenizerError("Cannot render an empty conversation: pass at least one message.")
    conversation = []
    for message in messages:
        message = _plain(message)
        if not isinstance(message, dict) or "role" not in message:
            raise TokenizerError(
                f"Each chat message must be a dict with a 'role' (and usually 'content'), got "
                f"{message!r}."
            )
        # OpenAI-style payloads carry content=None next to tool_calls; templates test for a
        # missing key, not for None, so drop such keys (transformers does the same).
        conversation.append({k: v for k, v in message.items() if v is not None})
    if tools is not None and any(not isinstance(tool, Mapping) for tool in tools):
        raise TokenizerError(
            "Tools must be JSON-schema dicts ({'type': 'function', 'function': {...}}); convert "
            "Python functions to schemas first."
        )
    variables = {**(special_tokens or {}), **_plain(extra)}
    try:
        compiled = compile_chat_template(template)
        return render_within_budget(lambda: compiled.render(
            messages=conversation,
            tools=_plain(tools),
            documents=_plain(documents),
            add_generation_prompt=add_generation_prompt,
            **variables,
        ))
    except jinja2.exceptions.SecurityError as err:
        raise TokenizerError(f"The chat template tried an unsafe operation: {err}") from err
    except jinja2.TemplateError as err:
        raise TokenizerError(f"The chat template rejected this conversation: {err}") from err


def select_chat_template(
    templates: str | Mapping[str, str] | None, name: str | None = None, tools: object = None
) -> str:
    """Pick the template string to use, following transformers' rules for named templates."""
    if templates is None:
        return CHATML_TEMPLATE
    if isinstance(templates, str):
        return templates
    if name is not None:
        if name not in templates:
            raise TokenizerError(
                f"No chat template named {name!r}; this tokenizer has {sorted(templates)}."
            )
        return templates[name]
    # A model with a separate tool-use template wants it whenever tools are passed.
    if tools and "tool_use" in templates:
        return templates["tool_use"]
    if "default" in templates:
        return templates["default"]
    raise TokenizerError(
        f"This tokenizer has several chat templates {sorted(templates)} and none is 'default'; "
        "pass chat_template=<name>."
    )
