"""Hostile requests against the real server: each is an OpenAI-shaped 4xx at once, the
streams of other clients carry on, and nothing they send can make the server do unbounded work
(oversized bodies, lone surrogates, a looping chat template, floods of stop strings)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from test_errors import CHAT, assert_error

from lmstack.serve import BackgroundServer, create_app, load_entry
from lmstack.serve.guards import DEFAULT_MAX_BODY_BYTES
from lmstack.tokenizer import Tokenizer

SURROGATE = '"\\ud800"'  # a JSON escape json.loads accepts, but no UTF-8 encoder can take


def raw_post(url: str, text: str, client: httpx.Client | None = None) -> httpx.Response:
    send = client.post if client is not None else httpx.post
    return send(url, content=text.encode(), timeout=30,
                headers={"content-type": "application/json"})


def test_oversized_bodies_are_413_and_the_server_stays_responsive(live):
    big = b'{"model": "tiny", "prompt": "' + b"a" * (DEFAULT_MAX_BODY_BYTES + 1) + b'"}'
    r = httpx.post(live.base_url + "/completions", content=big, timeout=30,
                   headers={"content-type": "application/json"})
    assert_error(r, 413, "invalid_request_error", code="request_too_large")

    def chunks():  # no Content-Length: the cap must hold while the body streams in
        yield b'{"model": "tiny", "prompt": "'
        for _ in range(DEFAULT_MAX_BODY_BYTES // 65536 + 2):
            yield b"a" * 65536

    r = httpx.post(live.base_url + "/completions", content=chunks(), timeout=30,
                   headers={"content-type": "application/json"})
    assert_error(r, 413, "invalid_request_error", code="request_too_large")
    assert httpx.get(live.url + "/health", timeout=5).status_code == 200


@pytest.mark.parametrize("path,field", [("/completions", "prompt"),
                                        ("/chat/completions", "messages"),
                                        ("/embeddings", "input")])
def test_prompts_far_past_the_context_are_refused_before_tokenizing(live, path, field):
    text = "word " * 400_000  # 2 MB: under the body cap, far over any 512-token context
    body = {"model": "minilm" if field == "input" else "tiny",
            field: [{"role": "user", "content": text}] if field == "messages" else text}
    err = assert_error(httpx.post(live.base_url + path, json=body, timeout=30), 400,
                       "invalid_request_error", code="context_length_exceeded")
    assert "characters" in err["message"]


@pytest.mark.parametrize("path,body", [
    ("/completions", '{"model": "tiny", "prompt": %s}'),
    ("/chat/completions", '{"model": "tiny", "messages": [{"role": "user", "content": %s}]}'),
    ("/chat/completions", '{"model": %s, "messages": [{"role": "user", "content": "hi"}]}'),
    ("/embeddings", '{"model": "minilm", "input": [%s]}'),
    ("/completions", '{"model": "tiny", "prompt": "hi", "stop": [%s]}'),
])
def test_lone_surrogates_are_400_and_keep_the_connection(live, path, body):
    with httpx.Client() as client:
        r = raw_post(live.base_url + path, body % SURROGATE, client)
        assert "surrogate" in assert_error(r, 400, "invalid_request_error")["message"]
        # The same keep-alive connection still works (a 500 used to reset it).
        assert client.get(live.url + "/health").status_code == 200
    r = httpx.get(live.base_url + "/models/%ED%A0%80x", timeout=30)
    assert_error(r, 404, "invalid_request_error", code="model_not_found")


def test_stop_strings_are_bounded(live):
    for stop in (["x" * 1000] * 1000, ["a", "b", "c", "d", "e"], ["x" * 257]):
        r = httpx.post(live.base_url + "/completions", timeout=30,
                       json={"model": "tiny", "prompt": "hi", "stop": stop})
        assert_error(r, 400, "invalid_request_error", param="stop")


def test_a_tiny_temperature_is_greedy(live):
    def reply(temperature: float) -> str:
        r = httpx.post(live.base_url + "/completions", timeout=30, json={
            "model": "tiny", "prompt": "The quick", "max_tokens": 8,
            "temperature": temperature, "ignore_eos": True})
        assert r.status_code == 200, r.text
        return r.json()["choices"][0]["text"]

    # 1e-46 rounds to 0 in float32: it once divided by zero and returned token 0 forever.
    assert reply(1e-46) == reply(0.0) != ""


def test_huge_top_k_beside_running_streams(live):
    # top_k = 2**63 once overflowed in the engine thread and failed every stream in flight.
    async def main():
        async with httpx.AsyncClient(base_url=live.base_url, timeout=60) as client:
            async def stream() -> str:
                text = ""
                async with client.stream("POST", "/completions", json={
                        "model": "tiny", "prompt": "The quick", "max_tokens": 48,
                        "ignore_eos": True, "stream": True}) as r:
                    assert r.status_code == 200
                    async for line in r.aiter_lines():
                        if line.startswith("data: {"):
                            chunk = json.loads(line[6:])
                            assert "error" not in chunk, chunk
                            text += chunk["choices"][0]["text"]
                return text

            streams = [asyncio.create_task(stream()) for _ in range(3)]
            await asyncio.sleep(0.2)
            hostile = await client.post("/completions", json={
                "model": "tiny", "prompt": "hi", "top_k": 2**63, "max_tokens": 4})
            large = await client.post("/completions", json={
                "model": "tiny", "prompt": "hi", "top_k": 2**31 - 1, "max_tokens": 4})
            return hostile, large, await asyncio.gather(*streams)

    hostile, large, texts = asyncio.run(main())
    assert hostile.status_code == 400, hostile.text
    assert hostile.json()["error"]["param"] == "top_k"
    assert large.status_code == 200, large.text  # clamped to the vocabulary: no limit
    assert all(texts)


def test_a_looping_chat_template_is_400_and_health_stays_up(lm_folder):
    tok = Tokenizer.from_folder(lm_folder)
    tok.config.chat_template = ("{% for i in range(100000) %}{% for j in range(100000) %}"
                                "{% endfor %}{% endfor %}")
    entry = load_entry(lm_folder, "loops", tokenizer=tok, max_num_seqs=2)
    with BackgroundServer(create_app({"loops": entry})) as server:
        r = httpx.post(server.url + "/v1/chat/completions", timeout=30,
                       json={"model": "loops", "messages": CHAT})
        err = assert_error(r, 400, "invalid_request_error", param="messages")
        assert "chat template" in err["message"]
        assert httpx.get(server.url + "/health", timeout=5).status_code == 200


def test_allowed_hosts(lm_folder):
    entry = load_entry(lm_folder, "tiny", max_num_seqs=2)
    app = create_app({"tiny": entry}, allowed_hosts=["localhost", "127.0.0.1"])
    with BackgroundServer(app) as server:
        assert httpx.get(server.url + "/health").status_code == 200
        r = httpx.get(server.url + "/v1/models", headers={"host": "evil.example:80"})
        assert_error(r, 400, "invalid_request_error", code="host_not_allowed")
