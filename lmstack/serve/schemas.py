"""What the server answers, as pydantic models, so the OpenAPI document declares the real
responses: the bodies of 200s and the OpenAI-shaped error of every 4xx/5xx this server sends.

Follows the OpenAI API reference's response objects (text_completion, chat.completion, list of
embeddings, model) and its error object. Used for documentation only: routes build plain dicts.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorResponse(BaseModel):
    error: ErrorDetail


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class CompletionChoice(BaseModel):
    index: int
    text: str
    logprobs: dict[str, Any] | None
    finish_reason: str | None


class Completion(BaseModel):
    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage


class ToolCallFunction(BaseModel):
    name: str
    arguments: str


class ToolCall(BaseModel):
    id: str
    type: Literal["function"]
    function: ToolCallFunction


class AssistantMessage(BaseModel):
    role: Literal["assistant"]
    content: str | None
    tool_calls: list[ToolCall] | None = None


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    logprobs: dict[str, Any] | None
    finish_reason: str | None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    system_fingerprint: str | None
    choices: list[ChatChoice]
    usage: Usage


class Embedding(BaseModel):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str  # floats, or base64 little-endian float32


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    object: Literal["list"]
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str
    max_model_len: int | None
    capabilities: list[str]
    parent: str | None = None  # a LoRA adapter's base model (vLLM's field), else absent


class ModelList(BaseModel):
    object: Literal["list"]
    data: list[ModelCard]


class Health(BaseModel):
    status: Literal["ok", "starting"]
    models: dict[str, dict[str, Any]]


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


# Every route can meet the guards at the door (guards.py): 400 for a Host not allowed, 413.
DOOR = {400: _error("Bad request (or a Host header not allowed)"),
        413: _error("The request body is larger than the server accepts")}
# The /v1 routes: bad input, a wrong or missing key, an unknown model, a busy engine.
V1 = {**DOOR, 401: _error("Missing or incorrect API key"),
      404: _error("No such model"), 405: _error("Method not allowed on this path")}
GENERATE = {**V1, 503: _error("The server is at capacity; retry later")}
SSE = {"text/event-stream": {"schema": {"type": "string",
                                         "description": "Server-sent events, ending with "
                                                        "`data: [DONE]` (when stream is true)"}}}


def generation_responses(body: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    """A generation route's responses: the JSON body, or an event stream when streaming."""
    return {200: {"model": body, "content": SSE}, **GENERATE}


def tidy_openapi(openapi: dict[str, Any]) -> dict[str, Any]:
    """FastAPI documents a 422 on every route with a body; this server answers 400 instead
    (errors.py), so the 422 and its schemas go. Errors are JSON on every route, /metrics too
    (whose success is plain text)."""
    for path in openapi.get("paths", {}).values():
        for operation in path.values():
            responses = operation.get("responses", {})
            responses.pop("422", None)
            for status, response in responses.items():
                content = response.get("content", {})
                if status[0] in "45" and "text/plain" in content:
                    content["application/json"] = content.pop("text/plain")
    schemas = openapi.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return openapi
