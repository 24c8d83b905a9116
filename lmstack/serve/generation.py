"""Fan one API request out into engine sequences (prompts x n) and merge their streams back.

Follows vLLM's OpenAI server: one engine request per choice, seeds offset per choice, SSE
framing with `data: [DONE]`, errors before the first byte as HTTP statuses, after it in-band.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse

from lmstack.serve.errors import APIError, error_body, invalid, log, overloaded
from lmstack.serve.metrics import Metrics
from lmstack.serve.registry import ModelEntry

# Tasks started here must outlive a cancelled request long enough to abort their sequence;
# asyncio keeps only weak references to tasks, so hold them until they finish.
_background: set[asyncio.Task] = set()


@dataclass
class Choice:
    """One engine sequence: the `index`-th choice of the response."""

    index: int
    prompt_ids: list[int]
    params: Any  # lmstack.engine.SamplingParams
    text: str = ""
    token_ids: list[int] = field(default_factory=list)
    logprobs: list[dict] = field(default_factory=list)
    finish_reason: str | None = None
    completion_tokens: int = 0


def engine_error(exc: BaseException) -> APIError:
    """Map what the engine raises on admission to the status a client should see."""
    from lmstack.engine import EngineFullError

    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, EngineFullError):
        return overloaded(str(exc))
    if isinstance(exc, ValueError):
        return invalid(str(exc))
    raise exc


class Generation:
    """The choices of one request, run concurrently in the engine, outputs merged in arrival
    order. Iterating yields (choice, delta); leaving early (or being cancelled) aborts all."""

    def __init__(self, entry: ModelEntry, choices: list[Choice], metrics: Metrics,
                 started: float, prompt_tokens: int) -> None:
        self.entry, self.choices, self.metrics, self.started = entry, choices, metrics, started
        # Counted once per prompt, not per choice, as OpenAI bills n > 1.
        self.prompt_tokens = prompt_tokens
        self.first_token_at: float | None = None

    async def _pump(self, choice: Choice, queue: asyncio.Queue) -> None:
        try:
            stream = self.entry.async_engine.stream(choice.prompt_ids, choice.params)
            async with aclosing(stream) as outputs:
                async for out in outputs:
                    queue.put_nowait((choice, out, None))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - handed to the request that owns the choice
            queue.put_nowait((choice, None, exc))
        finally:
            queue.put_nowait((choice, None, StopAsyncIteration()))

    async def __aiter__(self) -> AsyncIterator[tuple[Choice, Any]]:
        queue: asyncio.Queue = asyncio.Queue()
        tasks = []
        for choice in self.choices:
            task = asyncio.create_task(self._pump(choice, queue))
            _background.add(task)
            task.add_done_callback(_background.discard)
            tasks.append(task)
        pending, outcome = len(tasks), "aborted"  # until shown otherwise: the client left
        try:
            while pending:
                choice, out, exc = await queue.get()
                if isinstance(exc, StopAsyncIteration):
                    pending -= 1
                    continue
                if exc is not None:
                    outcome = "failed"
                    raise engine_error(exc)
                self._account(choice, out)
                yield choice, out
            outcome = "done"
        finally:
            # Cancelling a pump closes its engine stream, which aborts the sequence and frees
            # its KV-cache blocks at once (the client is gone or the request failed).
            for task in tasks:
                task.cancel()
            latency = time.perf_counter() - self.started
            self.metrics.finished(self.entry.name, self.prompt_tokens, latency, outcome)

    def _account(self, choice: Choice, out: Any) -> None:
        new = len(out.token_ids)
        if new and self.first_token_at is None:
            self.first_token_at = time.perf_counter()
            self.metrics.first_token(self.entry.name, self.first_token_at - self.started)
        self.metrics.tokens(self.entry.name, new)
        choice.text += out.text
        choice.token_ids.extend(out.token_ids)
        if out.logprobs:
            choice.logprobs.extend(out.logprobs)
        choice.completion_tokens = out.completion_tokens
        if out.finished:
            choice.finish_reason = out.finish_reason or "stop"

    def usage(self) -> dict[str, int]:
        completion = sum(c.completion_tokens for c in self.choices)
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": completion,
                "total_tokens": self.prompt_tokens + completion}


def make_generation(entry: ModelEntry, prompts: list[list[int]], n: int, params: Any,
                    metrics: Metrics, started: float) -> Generation:
    """prompts x n choices; choice i*n + j samples with seed + j so the n differ but a fixed
    seed reproduces the whole response."""
    import dataclasses

    choices = []
    for i, ids in enumerate(prompts):
        for j in range(n):
            p = dataclasses.replace(params, stop=list(params.stop),
                                    stop_token_ids=list(params.stop_token_ids))
            if params.seed is not None:
                p.seed = (params.seed + j) % 2**63
            choices.append(Choice(i * n + j, ids, p))
    return Generation(entry, choices, metrics, started, sum(len(ids) for ids in prompts))


async def collect(request: Request, gen: Generation) -> None:
    """Run a non-streamed generation to the end, aborting it if the client hangs up."""

    async def drain() -> None:
        async for _ in gen:
            pass

    await cancel_on_disconnect(request, drain)


async def cancel_on_disconnect(request: Request, work: Callable[[], Awaitable[None]]) -> None:
    # Starlette cancels streaming responses on disconnect, but not plain handlers: without
    # this watch a client that gives up would leave its sequences generating to max_tokens.
    task = asyncio.create_task(work())
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=0.2)
            if done:
                return task.result()
            if await request.is_disconnected():
                task.cancel()
                raise APIError(499, "client closed the request", "client_closed")
    finally:
        if not task.done():
            task.cancel()


def sse(obj: Any) -> bytes:
    if isinstance(obj, str):
        return f"data: {obj}\n\n".encode()
    return f"data: {json.dumps(obj, ensure_ascii=False, separators=(',', ':'))}\n\n".encode()


async def prime(gen: Generation) -> tuple[AsyncIterator, tuple[Choice, Any] | None]:
    """Start a generation and wait for its first output, so that admission errors (engine
    full, prompt too long) still become an HTTP status instead of an in-band SSE error."""
    it = gen.__aiter__()
    try:
        first = await it.__anext__()
    except StopAsyncIteration:
        first = None
    except BaseException:
        await it.aclose()
        raise
    return it, first


async def sse_response(gen: Generation, to_chunks: Callable[[Choice, Any], list[dict]],
                       tail: Callable[[], list[dict]]) -> StreamingResponse:
    """The streamed answer of a chat or completions request: started (so admission errors
    are still HTTP statuses), then every output as `to_chunks` frames it, then `tail`."""
    it, first = await prime(gen)
    return StreamingResponse(stream_events(it, first, to_chunks, tail),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def stream_events(it: AsyncIterator, first: tuple[Choice, Any] | None,
                        to_chunks: Callable[[Choice, Any], list[dict]],
                        tail: Callable[[], list[dict]]) -> AsyncIterator[bytes]:
    """SSE bytes: chunks for every output, the tail (usage), then [DONE]; an error after the
    headers went out is sent in-band, OpenAI-shaped, as vLLM does."""
    try:
        if first is not None:
            for chunk in to_chunks(*first):
                yield sse(chunk)
        async for choice, out in it:
            for chunk in to_chunks(choice, out):
                yield sse(chunk)
        for chunk in tail():
            yield sse(chunk)
    except APIError as exc:
        yield sse(exc.body())
    except Exception as exc:  # noqa: BLE001 - the status line is gone; say it in-band
        log.exception("generation failed mid-stream")
        yield sse(error_body(f"Generation failed: {exc}", "server_error", None,
                             "internal_error"))
    finally:
        await it.aclose()  # type: ignore[attr-defined]
    yield sse("[DONE]")
