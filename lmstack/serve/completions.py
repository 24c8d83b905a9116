"""`POST /v1/completions`: text in, text out, streamed as server-sent events on request.

Follows the OpenAI legacy Completions API (text_completion objects, logprobs with tokens,
token_logprobs, top_logprobs and text_offset; echo; several prompts in one request).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from lmstack.serve.generation import (
    Choice,
    Generation,
    collect,
    make_generation,
    sse_response,
)
from lmstack.serve.protocol import CompletionRequest
from lmstack.serve.registry import ModelEntry, ServerState
from lmstack.serve.sampling import (
    check_prompt_chars,
    check_token_ids,
    resolve_max_tokens,
    sampling_params,
)
from lmstack.serve.schemas import Completion, generation_responses

router = APIRouter()


def completion_logprobs(entries: list[dict] | None, offset: int) -> dict[str, Any] | None:
    """The legacy logprobs object; text_offset counts characters from the start of the text."""
    if not entries:
        return None
    tokens, offsets = [], []
    for e in entries:
        offsets.append(offset)
        tokens.append(e["token"])
        offset += len(e["token"])
    return {"tokens": tokens, "token_logprobs": [e["logprob"] for e in entries],
            "top_logprobs": [top_by_text(e.get("top_logprobs") or []) for e in entries],
            "text_offset": offsets}


def top_by_text(top: list[dict]) -> dict[str, float]:
    """The legacy format keys alternatives by their text, and different ids can share a text
    (two byte tokens that are each half a character both read "\ufffd"): keep the likeliest."""
    out: dict[str, float] = {}
    for t in top:
        out[t["token"]] = max(out.get(t["token"], t["logprob"]), t["logprob"])
    return out


def encode_prompts(entry: ModelEntry, req: CompletionRequest) -> tuple[list[list[int]], list[str]]:
    """Token ids and text of every prompt (text is what `echo` sends back). CPU work on
    megabytes at worst, so callers run it off the event loop."""
    prompts = req.prompts()
    for p in prompts:  # every prompt is checked before any is tokenized
        if isinstance(p, str):
            check_prompt_chars(entry, p)
    ids, texts = [], []
    for p in prompts:
        if isinstance(p, str):
            ids.append(entry.tokenizer.encode(p))
            texts.append(p)
        else:
            ids.append(check_token_ids(entry, list(p), "prompt"))
            texts.append(entry.tokenizer.decode(p))
    return ids, texts


@router.post("/v1/completions", response_model=None,
             responses=generation_responses(Completion))
async def create_completion(req: CompletionRequest, request: Request) -> Any:
    started = time.perf_counter()
    state: ServerState = request.app.state.lmstack
    entry = state.get(req.model, "generate")
    prompts, prompt_texts = await asyncio.to_thread(encode_prompts, entry, req)
    max_tokens = resolve_max_tokens(entry, [len(p) for p in prompts], req.max_tokens)
    params = sampling_params(req, entry, max_tokens, req.logprobs)
    gen = make_generation(entry, prompts, req.n, params, state.metrics, started)
    head = {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion",
            "created": int(time.time()), "model": req.model}
    if req.stream:
        return await _stream(req, gen, head, prompt_texts)
    await collect(request, gen)
    choices = []
    for c in gen.choices:
        prefix = prompt_texts[c.index // req.n] if req.echo else ""
        choices.append({"index": c.index, "text": prefix + c.text,
                        "logprobs": completion_logprobs(c.logprobs, len(prefix))
                        if req.logprobs is not None else None,
                        "finish_reason": c.finish_reason})
    return {**head, "choices": choices, "usage": gen.usage()}


async def _stream(req: CompletionRequest, gen: Generation, head: dict,
                  prompt_texts: list[str]) -> StreamingResponse:
    echoed: set[int] = set()
    # Where each choice's streamed text has reached, for logprobs' text_offset.
    sent: dict[int, int] = {}

    def to_chunks(choice: Choice, out: Any) -> list[dict]:
        text, at = out.text, sent.get(choice.index, 0)
        if req.echo and choice.index not in echoed:
            echoed.add(choice.index)
            prefix = prompt_texts[choice.index // req.n]
            text, at = prefix + text, at + len(prefix)
        logprobs = None
        if req.logprobs is not None:
            logprobs = completion_logprobs(out.logprobs, at)
        sent[choice.index] = at + len(out.text)
        if not (text or logprobs or out.finished):
            return []  # a token that completes no character yet (half of a UTF-8 sequence)
        chunk = {**head, "choices": [{
            "index": choice.index, "text": text, "logprobs": logprobs,
            "finish_reason": choice.finish_reason if out.finished else None}]}
        if req.include_usage:
            chunk["usage"] = None
        return [chunk]

    def tail() -> list[dict]:
        return [{**head, "choices": [], "usage": gen.usage()}] if req.include_usage else []

    return await sse_response(gen, to_chunks, tail)
