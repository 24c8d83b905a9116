"""A ChatModel over any OpenAI-compatible HTTP server (lmstack serve, vLLM, llama.cpp, OpenAI).

Follows the OpenAI chat-completions API and its server-sent-event stream format; retries with
exponential backoff on 429, 5xx and connection failures, as the official clients do.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Iterator, Sequence
from typing import Any, Self

import httpx

from lmstack.chat.types import (
    ChatError,
    ChatResult,
    Message,
    MessageLike,
    ToolCall,
    Usage,
    to_wire,
    tool_schema,
)

RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})


class OpenAIChatModel:
    """chat() and stream() against `{base_url}/chat/completions`.

    base_url includes the version prefix, as with the openai package
    ("http://127.0.0.1:8000/v1"). api_key defaults to $OPENAI_API_KEY and is sent as a bearer
    token when set. model=None asks the server's /models for its first model.
    """

    def __init__(
        self, base_url: str = "http://127.0.0.1:8000/v1", api_key: str | None = None,
        model: str | None = None, timeout: float = 60.0, max_retries: int = 3,
        backoff_s: float = 0.5, max_backoff_s: float = 8.0,
        transport: httpx.BaseTransport | None = None,
    ):
        api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.model = model
        self.max_retries, self.backoff_s, self.max_backoff_s = max_retries, backoff_s, max_backoff_s
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))

    # ------------------------------------------------------------------ the protocol
    def chat(self, messages: Sequence[MessageLike], tools: Sequence[Any] | None = None,
             **sampling: Any) -> ChatResult:
        data = self._request(self._body(messages, tools, sampling, stream=False))
        try:
            choice = data["choices"][0]
            msg = choice["message"]
        except (KeyError, IndexError, TypeError) as e:
            raise ChatError(f"the server's reply has no choices[0].message: {data!r:.200}") from e
        usage = data.get("usage") or {}
        return ChatResult(
            message=Message(role=msg.get("role", "assistant"), content=msg.get("content"),
                            tool_calls=[ToolCall.from_dict(c) for c in msg.get("tool_calls")
                                        or []]),
            finish_reason=choice.get("finish_reason"),
            usage=Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)),
            model=data.get("model"))

    def stream(self, messages: Sequence[MessageLike], tools: Sequence[Any] | None = None,
               **sampling: Any) -> Iterator[str]:
        """Yield content deltas as they arrive. A failure before the first delta is retried
        like chat(); after it, retrying would repeat text, so it raises ChatError."""
        body = self._body(messages, tools, sampling, stream=True)
        for attempt in range(self.max_retries + 1):
            started = False
            try:
                with self._client.stream("POST", "/chat/completions", json=body) as response:
                    if response.status_code != 200:
                        response.read()
                        self._raise_or_retry(response, attempt)
                        continue
                    for delta in _sse_deltas(response):
                        started = True
                        yield delta
                    return
            except httpx.TransportError as e:
                if started or attempt == self.max_retries:
                    raise ChatError(f"connection to the chat server failed: {e}") from e
                self._sleep(attempt, None)
        raise ChatError("the chat server kept failing; gave up after retries")

    # ------------------------------------------------------------------ plumbing
    def _body(self, messages, tools, sampling: dict[str, Any], stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model or self._default_model(),
                                "messages": to_wire(list(messages)), "stream": stream}
        if tools:
            body["tools"] = [tool_schema(t) for t in tools]
        body.update({k: v for k, v in sampling.items() if v is not None})
        return body

    def _default_model(self) -> str:
        models = self._request(None, method="GET", path="/models").get("data") or []
        if not models:
            raise ChatError("the server lists no models; pass model= explicitly")
        self.model = models[0]["id"]
        return self.model

    def _request(self, body: dict | None, method: str = "POST",
                 path: str = "/chat/completions") -> dict[str, Any]:
        for attempt in range(self.max_retries + 1):
            try:
                response = self._client.request(method, path, json=body)
            except httpx.TransportError as e:
                if attempt == self.max_retries:
                    raise ChatError(f"connection to the chat server failed: {e}") from e
                self._sleep(attempt, None)
                continue
            if response.status_code == 200:
                try:
                    return response.json()
                except json.JSONDecodeError as e:
                    raise ChatError(f"the server sent invalid JSON: {response.text[:200]}") from e
            self._raise_or_retry(response, attempt)
        raise ChatError("the chat server kept failing; gave up after retries")

    def _raise_or_retry(self, response: httpx.Response, attempt: int) -> None:
        """Sleep before the next attempt, or raise the server's error as a ChatError."""
        if response.status_code in RETRY_STATUSES and attempt < self.max_retries:
            self._sleep(attempt, response.headers.get("retry-after"))
            return
        message, etype, code = _error_fields(response)
        raise ChatError(f"HTTP {response.status_code}: {message}", response.status_code, etype,
                        code)

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = min(self.max_backoff_s, self.backoff_s * 2 ** attempt)
        delay *= random.uniform(0.5, 1.0)  # jitter, so many clients do not retry in lockstep
        if retry_after:
            try:
                delay = min(self.max_backoff_s, max(delay, float(retry_after)))
            except ValueError:
                pass
        time.sleep(delay)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _error_fields(response: httpx.Response) -> tuple[str, str | None, str | None]:
    try:
        err = response.json().get("error")
    except (json.JSONDecodeError, AttributeError):
        err = None
    if isinstance(err, dict):
        return str(err.get("message")), err.get("type"), err.get("code")
    return (response.text[:500] or response.reason_phrase), None, None


def _sse_deltas(response: httpx.Response) -> Iterator[str]:
    """Content deltas from a chat-completions event stream, up to `data: [DONE]`."""
    for line in response.iter_lines():
        if not line.startswith("data:"):
            continue  # blank separators, comments (": ping") and other fields
        payload = line[5:].strip()
        if payload == "[DONE]":
            return
        try:
            chunk = json.loads(payload)
        except json.JSONDecodeError as e:
            raise ChatError(f"the server streamed invalid JSON: {payload[:200]}") from e
        if "error" in chunk:
            err = chunk["error"] if isinstance(chunk["error"], dict) else {"message": chunk}
            raise ChatError(str(err.get("message")), None, err.get("type"), err.get("code"))
        for choice in chunk.get("choices") or []:
            text = (choice.get("delta") or {}).get("content")
            if text:
                yield text
