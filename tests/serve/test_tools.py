"""Tool calls written by the model (the ChatML template's <tool_call> format) come back as
OpenAI `tool_calls`, whole or streamed, and the tools reach the prompt."""

from __future__ import annotations

import json

from lmstack.serve.tools import ToolCallStream, wire_tool_calls

REPLY = ('Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}'
         '\n</tool_call>\n<tool_call>\n{"name": "now", "arguments": {}}\n</tool_call>')
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]


def test_wire_tool_calls():
    content, calls = wire_tool_calls(REPLY)
    assert content.strip() == "Let me check."
    assert [c["function"]["name"] for c in calls] == ["get_weather", "now"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Paris"}
    assert calls[0]["type"] == "function" and calls[0]["id"].startswith("call_")
    # Unclosed at the end (generation stopped on <|im_end|>) still parses.
    assert wire_tool_calls('<tool_call>{"name": "f", "arguments": {"x": 1}}')[1]
    # Malformed JSON is not a call: the text survives untouched.
    assert wire_tool_calls("<tool_call>{oops</tool_call> hi") == (
        "<tool_call>{oops</tool_call> hi", [])


def test_stream_splitter_matches_whole_parse():
    for size in (1, 3, 7, 50):
        splitter = ToolCallStream()
        streamed = "".join(splitter.feed(REPLY[i:i + size]) for i in range(0, len(REPLY), size))
        rest, calls = splitter.finish()
        whole_content, whole_calls = wire_tool_calls(REPLY)
        assert streamed + rest == whole_content
        assert [c["function"] for c in calls] == [c["function"] for c in whole_calls]
    plain = ToolCallStream()
    text = "no tools here, but a < and <tool \n"
    assert "".join(plain.feed(ch) for ch in text) + plain.finish()[0] == text


def test_tools_reach_the_prompt(client):
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    plain = client.chat.completions.create(model="tiny", messages=messages, max_tokens=2,
                                           temperature=0)
    with_tools = client.chat.completions.create(model="tiny", messages=messages, max_tokens=2,
                                                temperature=0, tools=TOOLS)
    off = client.chat.completions.create(model="tiny", messages=messages, max_tokens=2,
                                         temperature=0, tools=TOOLS, tool_choice="none")
    assert with_tools.usage.prompt_tokens > plain.usage.prompt_tokens
    assert off.usage.prompt_tokens == plain.usage.prompt_tokens


class ScriptedEngine:
    """Stands in for AsyncEngine and always "generates" REPLY, a few characters per step: the
    test is about the server's tool-call handling, which no random model would exercise."""

    def __init__(self) -> None:
        self.stats = {"waiting": 0, "running": 0}

    def stream(self, prompt, params, request_id=None):
        from lmstack.engine import RequestOutput

        async def outputs():
            for i in range(0, len(REPLY), 5):
                last = i + 5 >= len(REPLY)
                yield RequestOutput("r", REPLY[i:i + 5], [1], last, "stop" if last else None,
                                    len(prompt), i // 5 + 1)

        return outputs()


def test_tool_calls_over_http(live):
    import openai

    from lmstack.serve import BackgroundServer, ModelEntry, create_app

    scripted = ScriptedEngine()
    entry = ModelEntry("agent", live.models["tiny"].tokenizer, engine=scripted,
                       async_engine=scripted, max_model_len=512)
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    with BackgroundServer(create_app({"agent": entry})) as server, openai.OpenAI(
            base_url=server.url + "/v1", api_key="-", max_retries=0) as client:
        whole = client.chat.completions.create(model="agent", messages=messages, tools=TOOLS)
        choice = whole.choices[0]
        assert choice.finish_reason == "tool_calls"
        assert [c.function.name for c in choice.message.tool_calls] == ["get_weather", "now"]
        assert json.loads(choice.message.tool_calls[0].function.arguments) == {"city": "Paris"}
        assert choice.message.content.strip() == "Let me check."
        content, names, finish = "", [], None
        for chunk in client.chat.completions.create(model="agent", messages=messages,
                                                    tools=TOOLS, stream=True):
            delta = chunk.choices[0].delta
            content += delta.content or ""
            names += [c.function.name for c in delta.tool_calls or []]
            finish = chunk.choices[0].finish_reason or finish
        assert (content, names, finish) == (choice.message.content, ["get_weather", "now"],
                                            "tool_calls")
        # Without tools in the request, the same text is just text.
        bare = client.chat.completions.create(model="agent", messages=messages)
        assert bare.choices[0].message.content == REPLY and not bare.choices[0].message.tool_calls


REPLIES = [REPLY, '{"name": "now", "arguments": {}}', "<tool_call>{oops</tool_call> hi",
           " just text \n", '<tool_call>{"name": "f", "arguments": {"x": 1}}']


def test_server_and_in_process_chat_read_replies_alike(live):
    # The same generated text, through POST /v1/chat/completions and through the in-process
    # EngineChatModel: both must find the same content and the same calls.
    import openai
    from engine_helpers import ScriptedLM

    from lmstack.engine import AsyncEngine, Engine
    from lmstack.engine.chat_model import EngineChatModel
    from lmstack.serve import BackgroundServer, ModelEntry, create_app
    from lmstack.tokenizer.chat_prompt import chat_prompt_ids

    tok = live.models["tiny"].tokenizer
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    prompt_len = len(chat_prompt_ids(tok, messages, TOOLS))
    engines = {}
    for i, reply in enumerate(REPLIES):
        script = tok.encode(reply, add_special_tokens=False) + [tok.token_to_id("<|im_end|>")]
        engines[f"r{i}"] = AsyncEngine(Engine(ScriptedLM(script, prompt_len, len(tok)), tok))
    entries = {name: ModelEntry(name, tok, engine=e, max_model_len=512)
               for name, e in engines.items()}
    try:
        with BackgroundServer(create_app(entries)) as server, openai.OpenAI(
                base_url=server.url + "/v1", api_key="-", max_retries=0) as client:
            for name, engine in engines.items():
                http = client.chat.completions.create(model=name, messages=messages,
                                                      tools=TOOLS, temperature=0).choices[0]
                local = EngineChatModel(engine).chat(messages, tools=TOOLS, temperature=0)
                assert http.message.content == local.message.content, name
                assert [(c.function.name, c.function.arguments)
                        for c in http.message.tool_calls or []] == [
                    (c.name, c.arguments) for c in local.tool_calls], name
                assert http.finish_reason == local.finish_reason, name
    finally:
        for engine in engines.values():
            engine.shutdown()
