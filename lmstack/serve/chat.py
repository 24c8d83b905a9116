"""`POST /v1/chat/completions`: messages rendered by the model's chat template, then generated.

Follows the OpenAI Chat Completions API (chat.completion and chat.completion.chunk objects,
role-first deltas, logprobs.content, response_format) as vLLM's server implements it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from lmstack.chat.tool_calls import tool_call_schema
from lmstack.serve.errors import invalid
from lmstack.serve.generation import (
    Choice,
    Generation,
    collect,
    make_generation,
    sse_response,
)
from lmstack.serve.protocol import ChatCompletionRequest, ResponseFormat
from lmstack.serve.registry import ModelEntry, ServerState
from lmstack.serve.sampling import check_prompt_chars, resolve_max_tokens, sampling_params
from lmstack.serve.schemas import ChatCompletion, generation_responses
from lmstack.serve.tools import ToolCallStream, forced_tool_call, wire_tool_calls
from lmstack.tokenizer.chat_prompt import encode_chat_prompt, end_of_turn_ids, render_chat_prompt

router = APIRouter()
log = logging.getLogger("lmstack.serve")

# response_format json_object / json_schema and a forced tool call (tool_choice "required" or a
# named function) are decoded under a JSON Schema (lmstack.engine.json_guide): the engine masks
# every token that would break the JSON or the schema, so a reply that ends by itself always
# parses and matches. Only max_tokens can cut one short (then finish_reason is "length" and the
# text is returned as generated). The system hint below still helps: a model told to write
# JSON picks better values than one only held to the syntax.
JSON_HINT = "Reply with one valid JSON object and nothing else: no prose, no code fences."


def steer_to_json(messages: list[dict], fmt: ResponseFormat) -> list[dict]:
    hint = JSON_HINT
    if fmt.type == "json_schema":
        schema = (fmt.json_schema or {}).get("schema")
        hint += f" The object must match this JSON Schema: {json.dumps(schema)}"
    if messages and messages[0]["role"] == "system":
        first = dict(messages[0], content=f"{messages[0]['content']}\n\n{hint}".strip())
        return [first, *messages[1:]]
    return [{"role": "system", "content": hint}, *messages]


def render_prompt(entry: ModelEntry, req: ChatCompletionRequest) -> list[int]:
    """The prompt's token ids; CPU work on megabytes at worst, so callers run it off the loop."""
    messages = [m.for_template() for m in req.messages]
    check_prompt_chars(entry, "".join(m["content"] for m in messages), "messages")
    if req.response_format is not None and req.response_format.type != "text":
        messages = steer_to_json(messages, req.response_format)
    tools = req.tools if uses_tools(req) else None
    try:
        text = render_chat_prompt(entry.tokenizer, messages, tools)
    except Exception as exc:
        # Templates raise anything (jinja's raise_exception, our render budget). A template
        # that rejects the conversation (say, roles out of order) is the client's input being
        # refused, so it is a 400 with the template's own words.
        raise invalid(f"The chat template rejected these messages: {exc}", "messages") from exc
    return encode_chat_prompt(entry.tokenizer, check_prompt_chars(entry, text, "messages"))


def uses_tools(req: ChatCompletionRequest) -> bool:
    return bool(req.tools) and req.tool_choice != "none"


def guided_schema(req: ChatCompletionRequest) -> dict | None:
    """The JSON Schema the reply is decoded under, if any (see the note above)."""
    if req.forced_tools:
        return tool_call_schema(req.forced_tools)
    fmt = req.response_format
    if fmt is None or fmt.type == "text":
        return None
    return fmt.json_schema["schema"] if fmt.type == "json_schema" else {"type": "object"}


def chat_logprobs(entries: list[dict] | None) -> dict[str, Any] | None:
    if entries is None:
        return None

    def one(token: str, logprob: float) -> dict[str, Any]:
        return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}

    return {"content": [
        {**one(e["token"], e["logprob"]),
         "top_logprobs": [one(t["token"], t["logprob"]) for t in e.get("top_logprobs") or []]}
        for e in entries]}


@router.post("/v1/chat/completions", response_model=None,
             responses=generation_responses(ChatCompletion))
async def create_chat_completion(req: ChatCompletionRequest, request: Request) -> Any:
    started = time.perf_counter()
    state: ServerState = request.app.state.lmstack
    entry = state.get(req.model, "generate")
    prompt = await asyncio.to_thread(render_prompt, entry, req)
    max_tokens = resolve_max_tokens(entry, [len(prompt)], req.completion_limit,
                                    "max_completion_tokens" if req.max_completion_tokens
                                    else "max_tokens", "messages")
    top = (req.top_logprobs or 0) if req.logprobs else None
    params = sampling_params(req, entry, max_tokens, top, end_of_turn_ids(entry.tokenizer),
                             guided_schema(req))
    gen = make_generation(entry, [prompt], req.n, params, state.metrics, started)
    head = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
            "created": int(time.time()), "model": entry.name, "system_fingerprint": None}
    if req.stream:
        return await _stream(req, gen, head)
    await collect(request, gen)
    json_mode = req.response_format is not None and req.response_format.type != "text"
    choices = []
    for c in gen.choices:
        if json_mode and not _parses(c.text):
            log.warning("response_format %s: choice %d is not valid JSON (finish_reason %s)",
                        req.response_format.type, c.index, c.finish_reason)
        message: dict[str, Any] = {"role": "assistant", "content": c.text}
        finish = c.finish_reason
        forced = forced_tool_call(c.text) if req.forced_tools else None
        if forced is not None:
            message = {"role": "assistant", "content": None, "tool_calls": [forced]}
            finish = "tool_calls"
        elif uses_tools(req):  # read as the in-process ChatModel reads it (chat/tool_calls.py)
            content, calls = wire_tool_calls(c.text)
            message = {"role": "assistant", "content": content}
            if calls:
                message = {**message, "content": content or None, "tool_calls": calls}
                finish = "tool_calls"
        choices.append({"index": c.index, "message": message,
                        "logprobs": chat_logprobs(c.logprobs) if req.logprobs else None,
                        "finish_reason": finish})
    return {**head, "choices": choices, "usage": gen.usage()}


def _parses(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


async def _stream(req: ChatCompletionRequest, gen: Generation, head: dict) -> StreamingResponse:
    head = {**head, "object": "chat.completion.chunk"}
    announced: set[int] = set()
    # With tools on, text from a <tool_call> marker on is held back and sent as tool_calls.
    splitters: dict[int, ToolCallStream] = {}
    held: dict[int, str] = {}  # a forced tool call's JSON, per choice

    def chunk(index: int, delta: dict, finish: str | None = None,
              logprobs: dict | None = None) -> dict:
        out = {**head, "choices": [{"index": index, "delta": delta, "logprobs": logprobs,
                                    "finish_reason": finish}]}
        if req.include_usage:
            out["usage"] = None
        return out

    def to_chunks(choice: Choice, out: Any) -> list[dict]:
        chunks = []
        if choice.index not in announced:
            # OpenAI's first delta of each choice carries the role and empty content.
            announced.add(choice.index)
            chunks.append(chunk(choice.index, {"role": "assistant", "content": ""}))
        logprobs = chat_logprobs(out.logprobs) if req.logprobs and out.logprobs else None
        text = out.text
        if req.forced_tools:  # the JSON becomes one tool_calls delta at the end
            held[choice.index] = held.get(choice.index, "") + text
            text = ""
        elif uses_tools(req):
            text = splitters.setdefault(choice.index, ToolCallStream()).feed(text)
        if text or logprobs:
            chunks.append(chunk(choice.index, {"content": text}, logprobs=logprobs))
        if out.finished:
            finish = choice.finish_reason
            call = forced_tool_call(held.get(choice.index, "")) if req.forced_tools else None
            if call is not None:
                chunks.append(chunk(choice.index, {"tool_calls": [{"index": 0, **call}]}))
                finish = "tool_calls"
            elif req.forced_tools:  # cut short: show what was written
                chunks.append(chunk(choice.index, {"content": held.get(choice.index, "")}))
            elif uses_tools(req):
                rest, calls = splitters.setdefault(choice.index, ToolCallStream()).finish()
                if rest:
                    chunks.append(chunk(choice.index, {"content": rest}))
                if calls:
                    chunks.append(chunk(choice.index, {"tool_calls": [
                        {"index": k, **call} for k, call in enumerate(calls)]}))
                    finish = "tool_calls"
            chunks.append(chunk(choice.index, {}, finish))
        return chunks

    def tail() -> list[dict]:
        return [{**head, "choices": [], "usage": gen.usage()}] if req.include_usage else []

    return await sse_response(gen, to_chunks, tail)
