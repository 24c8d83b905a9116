"""Tools: a typed Python function with a docstring becomes a callable with a JSON schema.

`@tool` reads the signature and docstring (first paragraph = description, the Google-style
"Args:" section = parameter descriptions) and lets pydantic build the schema and the validator
from the type hints, so str / int / float / bool / Enum / Literal / list / Optional and nested
pydantic models all follow pydantic's JSON-schema rules. The schema is the OpenAI
function-calling shape ({"type": "function", "function": {name, description, parameters}}).

`Tool.run` and `ToolRegistry.run` never raise: malformed JSON, arguments that fail validation,
an exception inside the tool and a timeout all come back as an observation string, because in
an agent loop the model should read the error and try again rather than crash the loop.
Reference: OpenAI API, "Function calling"; pydantic docs, "JSON Schema".
"""

from __future__ import annotations

import inspect
import json
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from lmstack.chat.types import ToolCall

_SECTION = re.compile(r"^(Args|Arguments|Parameters|Returns|Raises|Yields|Examples?|Notes?):\s*$")
_ARG_LINE = re.compile(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """(description, {parameter: description}) from a Google-style docstring.

    The description is the first paragraph joined into one line; an Args entry may run on over
    more-indented continuation lines.
    """
    lines = inspect.cleandoc(doc or "").splitlines()
    first: list[str] = []
    for line in lines:
        if not line.strip() or _SECTION.match(line.strip()):
            break
        first.append(line.strip())
    params: dict[str, str] = {}
    in_args, current, indent = False, None, None
    for line in lines:
        stripped = line.strip()
        if _SECTION.match(stripped):
            in_args, current = stripped.split(":")[0] in ("Args", "Arguments", "Parameters"), None
            indent = None
            continue
        if not in_args or not stripped:
            continue
        this_indent = len(line) - len(line.lstrip())
        if indent is None:
            indent = this_indent
        m = _ARG_LINE.match(stripped)
        if m and this_indent == indent:
            current = m.group(1).lstrip("*")
            params[current] = m.group(2).strip()
        elif current is not None and this_indent > indent:  # continuation of the last entry
            params[current] = f"{params[current]} {stripped}".strip()
    return " ".join(first), params


def _clean(node: Any, defs: dict[str, Any], seen: tuple[str, ...] = ()) -> Any:
    """Drop pydantic's "title" keywords and inline "$ref"s: small models read a flat schema
    more reliably than one that sends them to $defs. A property *named* title is kept."""
    if isinstance(node, list):
        return [_clean(x, defs, seen) for x in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            raise ValueError(f"recursive type {name!r} cannot be inlined into a tool schema")
        rest = {k: v for k, v in node.items() if k != "$ref"}
        return _clean({**defs[name], **rest}, defs, (*seen, name))
    out = {}
    for key, value in node.items():
        if key in ("title", "$defs"):
            continue
        if key == "properties":  # keys here are parameter names, not schema keywords
            out[key] = {k: _clean(v, defs, seen) for k, v in value.items()}
        else:
            out[key] = _clean(value, defs, seen)
    return out


def _observation(value: Any) -> str:
    """A tool's return value as text for the model: strings as they are, the rest as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    return json.dumps(value, ensure_ascii=False, default=str)


@dataclass
class Tool:
    """A function the model may call, its argument model (pydantic) and its limits."""

    fn: Callable[..., Any]
    name: str
    description: str
    args_model: type[BaseModel]
    timeout: float | None = 30.0
    parameters: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        raw = self.args_model.model_json_schema()
        self.parameters = _clean(raw, raw.get("$defs", {}))

    def schema(self) -> dict[str, Any]:
        """The OpenAI `tools` entry for this function."""
        return {"type": "function", "function": {
            "name": self.name, "description": self.description, "parameters": self.parameters}}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)  # still a plain function for Python callers

    def run(self, arguments: str | dict[str, Any]) -> str:
        """Validate the arguments, call the function under the timeout, return an observation."""
        try:
            if isinstance(arguments, str):
                arguments = ToolCall(self.name, arguments).parsed_arguments()
            values = self.args_model.model_validate(arguments)
        except ValueError as e:  # ValidationError is a ValueError too
            return f"error: {_brief(e)}"
        # Pass the validated objects (an Enum, a nested model), not their JSON dump.
        kwargs = {name: getattr(values, name) for name in type(values).model_fields}
        return self._call(kwargs)

    def _call(self, kwargs: dict[str, Any]) -> str:
        if self.timeout is None:
            return self._guarded(kwargs)
        result: list[str] = []
        # A daemon thread: Python cannot kill a thread, so a runaway tool is abandoned, not
        # stopped; it will not keep the interpreter alive. Real isolation needs a process.
        worker = threading.Thread(target=lambda: result.append(self._guarded(kwargs)),
                                  daemon=True, name=f"tool-{self.name}")
        worker.start()
        worker.join(self.timeout)
        if worker.is_alive() or not result:
            return f"error: tool {self.name!r} timed out after {self.timeout:g} s"
        return result[0]

    def _guarded(self, kwargs: dict[str, Any]) -> str:
        try:
            return _observation(self.fn(**kwargs))
        except Exception as e:  # noqa: BLE001 - any tool failure is news for the model
            return f"error: tool {self.name!r} raised {type(e).__name__}: {e}"


def _brief(e: Exception) -> str:
    """Validation errors as one short line per field, the form a model can act on."""
    if isinstance(e, ValidationError):
        return "invalid arguments: " + "; ".join(
            f"{'.'.join(map(str, err['loc'])) or '(arguments)'}: {err['msg']}"
            for err in e.errors(include_url=False))
    return str(e)


def tool(fn: Callable[..., Any] | None = None, *, name: str | None = None,
         description: str | None = None, timeout: float | None = 30.0) -> Any:
    """Decorator: `@tool` or `@tool(name=..., timeout=...)` turns a typed function into a Tool.

    Every parameter needs a type hint (the schema is built from it); a parameter with a
    default is optional. *args / **kwargs are refused: a model cannot fill them by name.
    """
    def build(f: Callable[..., Any]) -> Tool:
        doc_text, doc_params = parse_docstring(f.__doc__)
        hints = get_type_hints(f, include_extras=True)
        fields: dict[str, Any] = {}
        for p in inspect.signature(f).parameters.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise TypeError(f"tool {f.__name__!r}: *{p.name} cannot be filled by a model")
            if p.name not in hints:
                raise TypeError(f"tool {f.__name__!r}: parameter {p.name!r} needs a type hint")
            default = ... if p.default is p.empty else p.default
            fields[p.name] = (hints[p.name], Field(default, description=doc_params.get(p.name)))
        tool_name = name or f.__name__
        # extra="forbid": an argument the model invented is an error it should hear about.
        model = create_model(f"{tool_name}_args", __config__=ConfigDict(extra="forbid"),
                             **fields)
        return Tool(fn=f, name=tool_name, description=description or doc_text,
                    args_model=model, timeout=timeout)

    return build(fn) if fn is not None else build


class ToolRegistry:
    """The tools an agent may use, by name; a call to any other name is refused, never run."""

    def __init__(self, tools: Iterable[Tool] = ()):
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.register(t)

    def register(self, t: Tool) -> Tool:
        if not isinstance(t, Tool):
            raise TypeError(f"register a Tool (use @tool), not {type(t).__name__}")
        if t.name in self._tools:
            raise ValueError(f"a tool named {t.name!r} is already registered")
        self._tools[t.name] = t
        return t

    def __contains__(self, name: str) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def names(self) -> list[str]:
        return list(self._tools)

    def schemas(self) -> list[dict[str, Any]]:
        """The `tools` list for ChatModel.chat."""
        return [t.schema() for t in self._tools.values()]

    def run(self, call: ToolCall) -> str:
        """Run one tool call from the model; the result, or the reason it did not run."""
        t = self._tools.get(call.name)
        if t is None:
            return (f"error: unknown tool {call.name!r}; available tools: "
                    f"{', '.join(self._tools) or '(none)'}")
        return t.run(call.arguments)
