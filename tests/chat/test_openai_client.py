"""OpenAIChatModel against a small scripted HTTP server on 127.0.0.1: request shape, retries
with backoff, errors, and server-sent-event streaming. (The real lmstack server is tested in
tests/serve.)"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lmstack.chat import ChatError, ChatModel, Message, OpenAIChatModel, ToolCall


class Stub:
    """Answers each POST with the next scripted (status, body, headers); records requests."""

    def __init__(self):
        self.script: list[tuple[int, object, dict]] = []
        self.requests: list[dict] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                self._send(200, {"object": "list", "data": [{"id": "stub-model"}]}, {})

            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length))
                stub.requests.append({"body": body, "auth": self.headers.get("authorization")})
                status, payload, headers = stub.script.pop(0)
                time.sleep(float(headers.get("x-delay", 0)))
                self._send(status, payload, headers)

            def _send(self, status, payload, headers):
                data = payload.encode() if isinstance(payload, str) else json.dumps(
                    payload).encode()
                self.send_response(status)
                is_sse = isinstance(payload, str)
                self.send_header("content-type",
                                 "text/event-stream" if is_sse else "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # a client that timed out and hung up is part of the script

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture()
def stub():
    s = Stub()
    yield s
    s.server.shutdown()


def completion(content="Hello!", tool_calls=None, finish="stop"):
    msg = {"role": "assistant", "content": content}
    if tool_calls:
        msg["tool_calls"] = tool_calls
    return {"id": "x", "object": "chat.completion", "model": "stub-model",
            "choices": [{"index": 0, "message": msg, "finish_reason": finish}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}


def error(message, etype="invalid_request_error"):
    return {"error": {"message": message, "type": etype, "param": None, "code": None}}


def client(stub, **kw) -> OpenAIChatModel:
    return OpenAIChatModel(stub.url, api_key="sk-test", model="m", backoff_s=0.01, **kw)


def test_chat_sends_openai_body_and_parses_reply(stub):
    stub.script.append((200, completion(), {}))
    model = client(stub)
    assert isinstance(model, ChatModel)
    result = model.chat([{"role": "user", "content": "hi"}], temperature=0, max_tokens=5,
                        seed=None)
    assert result.content == "Hello!" and result.finish_reason == "stop"
    assert result.usage.total_tokens == 7
    sent = stub.requests[0]
    assert sent["auth"] == "Bearer sk-test"
    assert sent["body"] == {"model": "m", "messages": [{"role": "user", "content": "hi"}],
                            "stream": False, "temperature": 0, "max_tokens": 5}


def test_tool_calls_both_ways(stub):
    call = {"id": "call_1", "type": "function",
            "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'}}
    stub.script.append((200, completion(None, [call], "tool_calls"), {}))
    tools = [{"name": "add", "parameters": {"type": "object"}}]
    history = [Message("user", "1+2?"),
               Message("assistant", None, [ToolCall("add", '{"a": 1}', id="call_0")]),
               Message("tool", "3", tool_call_id="call_0")]
    result = client(stub).chat(history, tools=tools)
    assert result.tool_calls[0].name == "add"
    assert result.tool_calls[0].parsed_arguments() == {"a": 1, "b": 2}
    body = stub.requests[0]["body"]
    assert body["tools"] == [{"type": "function", "function": tools[0]}]
    assert body["messages"][1]["tool_calls"][0]["function"]["name"] == "add"
    assert body["messages"][2] == {"role": "tool", "content": "3", "tool_call_id": "call_0"}


def test_retries_429_and_5xx_then_succeeds(stub):
    stub.script += [(503, error("loading", "unavailable_error"), {}),
                    (429, error("slow down"), {"retry-after": "0"}),
                    (500, "internal error", {}),
                    (200, completion("finally"), {})]
    assert client(stub, max_retries=3).chat([{"role": "user", "content": "x"}]).content \
        == "finally"
    assert len(stub.requests) == 4


def test_gives_up_after_max_retries(stub):
    stub.script += [(503, error("busy", "unavailable_error"), {})] * 3
    with pytest.raises(ChatError, match="busy") as info:
        client(stub, max_retries=2).chat([{"role": "user", "content": "x"}])
    assert info.value.status == 503 and len(stub.requests) == 3


def test_client_errors_are_not_retried(stub):
    stub.script.append((400, error("max_tokens must be positive"), {}))
    with pytest.raises(ChatError, match="max_tokens must be positive") as info:
        client(stub).chat([{"role": "user", "content": "x"}], max_tokens=-1)
    assert info.value.status == 400 and info.value.type == "invalid_request_error"
    assert len(stub.requests) == 1


def test_connection_refused_is_retried_then_reported(free_port):
    model = OpenAIChatModel(f"http://127.0.0.1:{free_port}/v1", model="m", max_retries=2,
                            backoff_s=0.01)
    with pytest.raises(ChatError, match="connection"):
        model.chat([{"role": "user", "content": "x"}])


def test_slow_server_times_out_and_is_retried(stub):
    stub.script += [(200, completion("late"), {"x-delay": "1.0"}),
                    (200, completion("in time"), {})]
    model = client(stub, timeout=0.3, max_retries=1)
    assert model.chat([{"role": "user", "content": "x"}]).content == "in time"
    stub.script += [(200, completion("late"), {"x-delay": "1.0"}) for _ in range(2)]
    with pytest.raises(ChatError, match="connection|timed out"):
        model.chat([{"role": "user", "content": "x"}])


def sse(*deltas: str) -> str:
    events = [{"choices": [{"index": 0, "delta": {"role": "assistant"}}]}]
    events += [{"choices": [{"index": 0, "delta": {"content": d}}]} for d in deltas]
    events.append({"choices": [], "usage": {"prompt_tokens": 1}})
    return "".join(f"data: {json.dumps(e)}\n\n" for e in events) + ": ping\n\ndata: [DONE]\n\n"


def test_stream_parses_sse_and_retries_before_first_byte(stub):
    stub.script += [(503, error("warming up", "unavailable_error"), {}),
                    (200, sse("你好", "，", "world 🙂"), {})]
    model = client(stub)
    assert list(model.stream([{"role": "user", "content": "hi"}])) == ["你好", "，", "world 🙂"]
    assert stub.requests[-1]["body"]["stream"] is True


def test_model_defaults_to_the_servers_first(stub):
    stub.script.append((200, completion(), {}))
    OpenAIChatModel(stub.url, backoff_s=0.01).chat([{"role": "user", "content": "x"}])
    assert stub.requests[0]["body"]["model"] == "stub-model"


def test_chat_package_does_not_import_torch():
    code = "import sys, lmstack.chat; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
