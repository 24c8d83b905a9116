"""Request bodies of the OpenAI API as pydantic models, validated before anything runs.

Follows the OpenAI API reference (completions, chat completions, embeddings) and vLLM's
sampling extensions (top_k, min_p, repetition_penalty, ignore_eos, stop_token_ids).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from lmstack.chat.tool_calls import forced_tools, tool_name

MAX_N = 16  # choices per request; each is a sequence in the engine, so cap the fan-out
# OpenAI allows 4 stop strings; the length cap keeps the per-token check cheap (each token is
# tested against every stop string's prefixes).
MAX_STOPS, MAX_STOP_CHARS = 4, 256
MAX_STOP_TOKEN_IDS = 64
# Strict ints and bools: pydantic would otherwise read "stream": "yes" as true and
# "max_tokens": true as 1, hiding client bugs that OpenAI itself rejects.


def _first_surrogate_path(value: Any) -> str | None:
    """Where in a JSON value a lone UTF-16 surrogate sits (json.loads lets "\\ud800" through,
    but no tokenizer or UTF-8 encoder can take it), or None. Iterative: bodies nest deeply."""
    todo: list[tuple[Any, str]] = [(value, "")]
    while todo:
        item, path = todo.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return path or "body"
        elif isinstance(item, dict):
            for key, sub in item.items():
                todo.append((key, path or "body"))
                todo.append((sub, f"{path}.{key}" if path else str(key)))
        elif isinstance(item, list):
            todo.extend((sub, f"{path}[{i}]") for i, sub in enumerate(item))
    return None


class APIRequest(BaseModel):
    """A request body: unknown fields are ignored, as OpenAI-compatible servers do, so that
    newer clients that send extra knobs still work; text must be valid Unicode."""

    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        where = _first_surrogate_path(data)
        if where is not None:
            raise ValueError(f"{where} holds a lone UTF-16 surrogate (such as \\ud800), which "
                             "is not valid Unicode text; send UTF-8 text only")
        return data


class StreamOptions(BaseModel):
    include_usage: StrictBool = False


class SamplingRequest(APIRequest):
    """Fields that completions and chat completions share."""

    # Fields we know but cannot honour are refused below.
    model: str
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    n: StrictInt = Field(1, ge=1, le=MAX_N)
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: StrictInt | None = Field(None, ge=-(2**63), lt=2**64)
    presence_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    frequency_penalty: float | None = Field(None, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = None
    user: str | None = None
    # vLLM's extensions, sent through the openai client's `extra_body`.
    # vLLM's -1 means no limit; sizes past the vocabulary are clamped to it later. Past the
    # int32 range no vocabulary can reach, so such a value is a mistake (or a probe): 400.
    top_k: StrictInt | None = Field(None, ge=-1, lt=2**31)
    min_p: float | None = Field(None, ge=0.0, le=1.0)
    repetition_penalty: float | None = Field(None, gt=0.0, le=10.0)
    ignore_eos: StrictBool = False
    stop_token_ids: list[StrictInt] | None = Field(None, max_length=MAX_STOP_TOKEN_IDS)

    @field_validator("stop")
    @classmethod
    def _stop(cls, v: str | list[str] | None) -> list[str]:
        stops = [v] if isinstance(v, str) else list(v or [])
        if any(s == "" for s in stops):
            raise ValueError("stop strings must not be empty")
        if len(stops) > MAX_STOPS:
            raise ValueError(f"at most {MAX_STOPS} stop strings are allowed, got {len(stops)}")
        if any(len(s) > MAX_STOP_CHARS for s in stops):
            raise ValueError(f"each stop string may have at most {MAX_STOP_CHARS} characters")
        return stops

    @field_validator("logit_bias")
    @classmethod
    def _logit_bias(cls, v: dict[str, float] | None) -> None:  # accepted only when empty
        if v:
            raise ValueError("logit_bias is not supported by this server")

    @model_validator(mode="after")
    def _stream_options(self) -> SamplingRequest:
        if self.stream_options is not None and not self.stream:
            raise ValueError("stream_options is only allowed when stream is true")
        return self

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class CompletionRequest(SamplingRequest):
    prompt: str | list[str] | list[StrictInt] | list[list[StrictInt]]
    max_tokens: StrictInt | None = Field(16, ge=1)
    logprobs: StrictInt | None = Field(None, ge=0, le=5)
    echo: StrictBool = False
    suffix: str | None = None
    best_of: StrictInt | None = Field(None, ge=1)

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, v: Any) -> Any:
        if isinstance(v, list) and (not v or any(isinstance(p, list) and not p for p in v)):
            raise ValueError("prompt must not be empty")
        return v

    @model_validator(mode="after")
    def _unsupported(self) -> CompletionRequest:
        if self.suffix:
            raise ValueError("suffix (insertion) is not supported by this server")
        if self.best_of is not None and self.best_of != self.n:
            raise ValueError("best_of other than n is not supported by this server")
        if self.echo and self.logprobs is not None:
            raise ValueError("echo together with logprobs (prompt logprobs) is not supported")
        return self

    def prompts(self) -> list[str | list[int]]:
        """One entry per prompt: text, or token ids."""
        p = self.prompt
        if isinstance(p, str):
            return [p]
        if all(isinstance(x, int) for x in p):
            return [list(p)]  # type: ignore[arg-type]
        return list(p)  # type: ignore[arg-type]


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: str
    text: str | None = None

    @model_validator(mode="after")
    def _text_only(self) -> ContentPart:
        if self.type != "text" or self.text is None:
            raise ValueError(f"content part type {self.type!r} is not supported; this server "
                             "takes text parts ({'type': 'text', 'text': ...}) only")
        return self


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None

    def for_template(self) -> dict[str, Any]:
        """The plain dict a Jinja chat template expects (content flattened to one string)."""
        content = self.content
        if isinstance(content, list):
            content = "".join(part.text or "" for part in content)
        # "developer" is the newer name for "system"; chat templates know only the latter.
        out: dict[str, Any] = {"role": "system" if self.role == "developer" else self.role,
                               "content": content or ""}
        for key in ("name", "tool_calls", "tool_call_id"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _schema(self) -> ResponseFormat:
        if self.type == "json_schema" and not (self.json_schema or {}).get("schema"):
            raise ValueError("type json_schema needs json_schema.schema (the JSON Schema)")
        return self


class ChatCompletionRequest(SamplingRequest):
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: StrictInt | None = Field(None, ge=1)
    max_completion_tokens: StrictInt | None = Field(None, ge=1)
    logprobs: StrictBool = False
    top_logprobs: StrictInt | None = Field(None, ge=0, le=20)
    response_format: ResponseFormat | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None

    @model_validator(mode="after")
    def _checks(self) -> ChatCompletionRequest:
        if self.top_logprobs is not None and not self.logprobs:
            raise ValueError("top_logprobs needs logprobs set to true")
        choice = self.tool_choice
        if isinstance(choice, str) and choice not in ("none", "auto", "required"):
            raise ValueError(f"tool_choice {choice!r} is not supported; use 'auto', 'none', "
                             "'required' or {'type': 'function', 'function': {'name': ...}}")
        if choice == "required" and not self.tools:
            raise ValueError("tool_choice 'required' needs a non-empty tools list")
        if self.forced_tools and any(tool_name(t) is None for t in self.tools or []):
            raise ValueError("each tool must look like {'type': 'function', 'function': "
                             "{'name': ..., 'parameters': {...}}}")
        if isinstance(choice, dict):
            fn = choice.get("function")
            name = fn.get("name") if isinstance(fn, dict) else None
            known = [tool_name(t) for t in self.tools or []]
            if choice.get("type") != "function" or not isinstance(name, str):
                raise ValueError("a named tool_choice looks like {'type': 'function', "
                                 "'function': {'name': 'my_tool'}}")
            if name not in known:
                raise ValueError(f"tool_choice names {name!r}, which is not in tools "
                                 f"({', '.join(map(str, known)) or 'none given'})")
        return self

    @property
    def forced_tools(self) -> list[dict[str, Any]] | None:
        """The tools one of which the reply must call (tool_choice required or named)."""
        return forced_tools(self.tools, self.tool_choice)

    @property
    def completion_limit(self) -> int | None:
        # max_completion_tokens is the newer name; OpenAI deprecates max_tokens for chat.
        return self.max_completion_tokens or self.max_tokens


class EmbeddingRequest(APIRequest):
    model: str
    input: str | list[str] | list[StrictInt] | list[list[StrictInt]]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: StrictInt | None = Field(None, ge=1)
    user: str | None = None

    @field_validator("input")
    @classmethod
    def _input(cls, v: Any) -> Any:
        if isinstance(v, list) and (not v or any(isinstance(p, list) and not p for p in v)):
            raise ValueError("input must not be empty")
        return v

    def inputs(self) -> list[str | list[int]]:
        x = self.input
        if isinstance(x, str):
            return [x]
        if all(isinstance(i, int) for i in x):
            return [list(x)]  # type: ignore[arg-type]
        return list(x)  # type: ignore[arg-type]
