"""EngineChatModel: the ChatModel protocol in-process, and `lmstack chat` on top of it."""

from __future__ import annotations

import json

import pytest
from engine_helpers import ScriptedLM, tiny_llama
from typer.testing import CliRunner

from lmstack.chat import ChatModel
from lmstack.cli import app
from lmstack.engine import AsyncEngine, Engine
from lmstack.engine.chat_model import EngineChatModel

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "你好?"}]


def test_chat_and_stream_agree(chat_folder):
    model = EngineChatModel(chat_folder)
    assert isinstance(model, ChatModel)
    result = model.chat(MESSAGES, temperature=0, max_tokens=12)
    assert result.message.role == "assistant" and result.finish_reason in ("stop", "length")
    assert result.usage.completion_tokens <= 12 and result.usage.prompt_tokens > 5
    streamed = "".join(model.stream(MESSAGES, temperature=0, max_tokens=12))
    assert streamed == result.content
    seeded = [model.chat(MESSAGES, temperature=1.0, seed=5, max_tokens=10).content
              for _ in range(2)]
    assert seeded[0] == seeded[1]
    with pytest.raises(ValueError, match="unsupported sampling option"):
        model.chat(MESSAGES, best_of=3)
    assert model.engine.stats["running"] == 0


def test_forced_tool_calls_and_json_formats_are_guided_in_process(tokenizer):
    # Room for the tool preamble the template writes (this BPE spends ~300 tokens on it).
    model = EngineChatModel(Engine(tiny_llama(max_position_embeddings=1024), tokenizer))
    tools = [{"type": "function", "function": {"name": "pick", "parameters": {
        "type": "object", "required": ["n"], "properties": {"n": {"enum": [1, 2, 3]}}}}}]
    for seed in range(3):
        reply = model.chat(MESSAGES, tools=tools, tool_choice="required", temperature=1.0,
                           seed=seed, max_tokens=60)
        assert reply.finish_reason == "tool_calls" and reply.content == ""
        assert reply.tool_calls[0].name == "pick"
        assert reply.tool_calls[0].parsed_arguments()["n"] in (1, 2, 3)
    fmt = {"type": "json_schema", "json_schema": {"schema": {
        "type": "object", "required": ["ok"], "properties": {"ok": {"type": "boolean"}}}}}
    assert json.loads(model.chat(MESSAGES, response_format=fmt, max_tokens=30).content)[
        "ok"] in (True, False)
    with pytest.raises(ValueError, match="names no tool"):
        model.chat(MESSAGES, tools=tools, tool_choice={"type": "function",
                                                       "function": {"name": "nope"}})


def test_tool_calls_come_back_parsed(tokenizer):
    tools = [{"type": "function", "function": {
        "name": "get_weather", "parameters": {"type": "object",
                                              "properties": {"city": {"type": "string"}}}}}]
    prompt = tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True, tools=tools)
    prompt_len = len(tokenizer.encode(prompt, add_special_tokens=False))
    reply = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
    script = tokenizer.encode(reply, add_special_tokens=False) + [tokenizer.eos_token_id]
    engine = Engine(ScriptedLM(script, prompt_len, len(tokenizer)), tokenizer)
    shared = AsyncEngine(engine)  # the way a server would share its engine
    try:
        result = EngineChatModel(shared).chat(MESSAGES, tools=tools, temperature=0)
    finally:
        shared.shutdown()
    assert result.finish_reason == "tool_calls" and result.message.content is None
    assert result.tool_calls[0].name == "get_weather"
    assert result.tool_calls[0].parsed_arguments() == {"city": "Oslo"}


def test_reply_ends_at_the_end_of_turn_marker(tokenizer):
    prompt = tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True)
    prompt_len = len(tokenizer.encode(prompt, add_special_tokens=False))
    script = tokenizer.encode("Hi there<|im_end|>and more", add_special_tokens=False)
    engine = Engine(ScriptedLM(script, prompt_len, len(tokenizer)), tokenizer)
    result = EngineChatModel(engine).chat(MESSAGES, max_tokens=50)
    assert result.content == "Hi there" and result.finish_reason == "stop"


def test_cli_chat_session(chat_folder):
    runner = CliRunner()
    out = runner.invoke(app, ["chat", str(chat_folder), "--max-tokens", "8", "--temperature",
                              "0"], input="hello there\n/reset\nagain\n/exit\n")
    assert out.exit_code == 0, out.output
    assert out.output.count("model>") == 2 and "tok/s" in out.output
    eof = runner.invoke(app, ["chat", str(chat_folder), "--max-tokens", "4"], input="hi\n")
    assert eof.exit_code == 0, eof.output  # end of input quits cleanly
    missing = runner.invoke(app, ["chat", str(chat_folder / "nope")])
    assert missing.exit_code != 0
