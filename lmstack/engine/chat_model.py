"""EngineChatModel: the ChatModel protocol served in-process by lmstack's own engine.

Renders messages with the tokenizer's chat template (transformers' apply_chat_template
convention), generates with the Engine, and reads tool calls back in the Hermes/Qwen format.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from lmstack.chat.tool_calls import (
    forced_tools,
    parse_forced_call,
    parse_tool_calls,
    tool_call_schema,
)
from lmstack.chat.types import ChatResult, Message, MessageLike, Usage, to_wire, tool_schema
from lmstack.engine.async_engine import AsyncEngine
from lmstack.engine.engine import Engine
from lmstack.engine.params import RequestOutput, SamplingParams
from lmstack.tokenizer.chat_prompt import chat_prompt_ids, end_of_turn_ids

SAMPLING_FIELDS = {f.name for f in dataclasses.fields(SamplingParams)}
ALIASES = {"max_completion_tokens": "max_tokens", "top_logprobs": "logprobs"}
IGNORED = {"model", "n", "stream", "user"}  # meaningful to servers, not to one local call


class EngineChatModel:
    """chat() / stream() on a local model.

    Give an Engine (driven synchronously, one call at a time), an AsyncEngine (shared with a
    server; calls may come from many threads at once), or a model to load: a folder, a GGUF
    file or a short name such as `smollm2`, with `adapter` a PEFT folder to apply to it (any
    kind `lmstack finetune` saves: lmstack.adapt.generation).
    `default_sampling` fills in what a call leaves out (max_tokens 512 unless given).
    As over HTTP, `tool_choice` ("auto", "none", "required" or a named function) and
    `response_format` (json_object / json_schema) are accepted; a forced call and a JSON
    format are decoded under a JSON Schema, so they always parse (lmstack.engine.json_guide).
    """

    def __init__(self, engine_or_folder: Engine | AsyncEngine | str | Path,
                 name: str | None = None, adapter: str | Path | None = None,
                 **default_sampling: Any):
        if isinstance(engine_or_folder, (str, Path)):
            import lmstack
            from lmstack.adapt.generation import load_adapter_for_generation
            from lmstack.models.default import model_name

            model, tokenizer = lmstack.load(engine_or_folder)  # folder, GGUF or short name
            if tokenizer is None:
                raise ValueError(f"{engine_or_folder} has no tokenizer; a chat model needs one")
            if adapter is not None:
                model = load_adapter_for_generation(model, adapter)
            name = name or model_name(engine_or_folder)
            engine_or_folder = Engine(model, tokenizer, column_major=True)  # ours alone
        elif adapter is not None:
            raise ValueError("adapter applies to a model EngineChatModel loads; for an engine, "
                             "load the adapter into its model first")
        self.source = engine_or_folder
        inner = engine_or_folder.engine if isinstance(engine_or_folder, AsyncEngine) \
            else engine_or_folder
        self.engine: Engine = inner
        self.tokenizer = inner.tokenizer
        self.name = name or "lmstack"
        self.default_sampling = {"max_tokens": 512, **default_sampling}
        self._lock = threading.Lock()  # a bare Engine must only be stepped by one caller
        # Usage of the latest call (e.g. for a tokens/s readout after stream()); with calls
        # from several threads at once it is whichever finished last.
        self.last_usage = Usage()
        self._turn_ends = end_of_turn_ids(self.tokenizer) if self.tokenizer is not None else []

    # ------------------------------------------------------------------ the protocol
    def chat(self, messages: Sequence[MessageLike], tools: Sequence[Any] | None = None,
             **sampling: Any) -> ChatResult:
        forced = sampling.get("tool_choice") not in (None, "auto", "none")
        ids, params, tools = self._prepare(messages, tools, sampling)
        text, reason, tokens = "", None, 0
        for out in self._run(ids, params):
            text += out.text
            reason, tokens = out.finish_reason, out.completion_tokens
        if forced:
            call = parse_forced_call(text)
            content, calls = (None, [call]) if call is not None else (text, [])
        else:
            content, calls = parse_tool_calls(text) if tools else (text, [])
        if calls:
            reason = "tool_calls"
        return ChatResult(Message("assistant", content or (None if calls else ""), calls),
                          reason, Usage(len(ids), tokens), self.name)

    def stream(self, messages: Sequence[MessageLike], tools: Sequence[Any] | None = None,
               **sampling: Any) -> Iterator[str]:
        """Text deltas as they are generated (tool-call markup included, unparsed)."""
        ids, params, _ = self._prepare(messages, tools, sampling)
        for out in self._run(ids, params):
            if out.text:
                yield out.text

    # ------------------------------------------------------------------ plumbing
    def _prepare(self, messages: Sequence[MessageLike], tools, sampling: dict[str, Any]
                 ) -> tuple[list[int], SamplingParams, list[dict] | None]:
        """(prompt ids, sampling parameters, the tool schemas in play)."""
        if self.tokenizer is None:
            raise ValueError("this engine has no tokenizer, so it cannot render a chat")
        sampling = dict(sampling)
        choice, fmt = sampling.pop("tool_choice", None), sampling.pop("response_format", None)
        schemas = [tool_schema(t) for t in tools] if tools and choice != "none" else None
        ids = chat_prompt_ids(self.tokenizer, to_wire(list(messages)), schemas)
        params = self._params(sampling, len(ids))
        forced = forced_tools(schemas, choice)
        if forced == [] or (forced and not schemas):
            raise ValueError(f"tool_choice {choice!r} names no tool among those given")
        if forced:
            params.guided_json = tool_call_schema(forced)
        elif fmt and fmt.get("type") in ("json_object", "json_schema"):
            params.guided_json = ((fmt.get("json_schema") or {}).get("schema")
                                  if fmt["type"] == "json_schema" else {"type": "object"})
        return ids, params, schemas

    def _params(self, sampling: dict[str, Any], prompt_len: int) -> SamplingParams:
        merged = dict(self.default_sampling)
        for key, value in sampling.items():
            if value is not None:
                merged[ALIASES.get(key, key)] = value
        unknown = set(merged) - SAMPLING_FIELDS - IGNORED
        if unknown:
            raise ValueError(f"unsupported sampling option(s) {sorted(unknown)}; "
                             f"supported: {sorted(SAMPLING_FIELDS | set(ALIASES))}")
        kwargs = {k: v for k, v in merged.items() if k in SAMPLING_FIELDS}
        kwargs["stop_token_ids"] = [*kwargs.get("stop_token_ids", []), *self._turn_ends]
        # A default max_tokens must not push a long conversation past the context.
        room = self.engine.max_model_len - prompt_len
        if "max_tokens" not in sampling and room > 0:
            kwargs["max_tokens"] = min(kwargs["max_tokens"], room)
        return SamplingParams(**kwargs)

    def _run(self, ids: list[int], params: SamplingParams) -> Iterator[RequestOutput]:
        self.last_usage = Usage(len(ids), 0)
        for out in self._outputs(ids, params):
            self.last_usage = Usage(len(ids), out.completion_tokens)
            yield out

    def _outputs(self, ids: list[int], params: SamplingParams) -> Iterator[RequestOutput]:
        if isinstance(self.source, AsyncEngine):
            yield from self.source.iterate(ids, params)
            return
        with self._lock:
            rid = self.engine.add_request(ids, params)
            finished = False
            try:
                while not finished and self.engine.has_unfinished():
                    for out in self.engine.step():
                        if out.request_id == rid:
                            finished = out.finished
                            yield out
            finally:
                if not finished:  # the caller stopped iterating: free the blocks
                    self.engine.abort(rid)
                    self.engine.step()
