"""Bad requests get OpenAI-shaped 4xx errors (never a 500); a full queue is a 503; the API key
guards /v1 only."""

from __future__ import annotations

import httpx
import openai
import pytest

from lmstack.serve import BackgroundServer, create_app, load_entry

CHAT = [{"role": "user", "content": "hi"}]


def post(live, path: str, **kwargs) -> httpx.Response:
    return httpx.post(live.base_url + path, timeout=30, **kwargs)


def assert_error(r: httpx.Response, status: int, type_: str, param=..., code=...) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["type"] == type_ and err["message"]
    if param is not ...:
        assert err["param"] == param, err
    if code is not ...:
        assert err["code"] == code, err
    return err


@pytest.mark.parametrize("path", ["/completions", "/chat/completions", "/embeddings"])
def test_invalid_json_and_wrong_shapes(live, path):
    r = post(live, path, content=b'{"model": "tiny", "prompt": ', headers={
        "content-type": "application/json"})
    assert "JSON" in assert_error(r, 400, "invalid_request_error")["message"]
    assert_error(post(live, path, json=[1, 2, 3]), 400, "invalid_request_error")
    assert_error(post(live, path, json={}), 400, "invalid_request_error", param="model")
    empty = post(live, path, content=b"", headers={"content-type": "application/json"})
    assert "empty" in assert_error(empty, 400, "invalid_request_error")["message"]


BAD_BODIES = [  # (path, body, param the error should name)
    ("/completions", {"model": "tiny", "prompt": "x", "max_tokens": -5}, "max_tokens"),
    ("/completions", {"model": "tiny", "prompt": "x", "max_tokens": 0}, "max_tokens"),
    ("/completions", {"model": "tiny", "prompt": "x", "max_tokens": 10**12}, "max_tokens"),
    ("/completions", {"model": "tiny", "prompt": "x", "max_tokens": "many"}, "max_tokens"),
    ("/completions", {"model": "tiny", "prompt": "x", "max_tokens": True}, "max_tokens"),
    ("/completions", {"model": "tiny", "prompt": "x", "stream": "yes"}, "stream"),
    ("/completions", {"model": "tiny", "prompt": [True, False]}, "prompt"),
    ("/completions", {"model": "tiny", "prompt": "x", "temperature": 7}, "temperature"),
    ("/completions", {"model": "tiny", "prompt": "x", "top_p": 0}, "top_p"),
    ("/completions", {"model": "tiny", "prompt": "x", "n": 1000}, "n"),
    ("/completions", {"model": "tiny", "prompt": "x", "logprobs": 50}, "logprobs"),
    ("/completions", {"model": "tiny", "prompt": "x", "logit_bias": {"5": 1}}, "logit_bias"),
    ("/completions", {"model": "tiny", "prompt": "x", "suffix": "y"}, None),
    ("/completions", {"model": "tiny", "prompt": [], "max_tokens": 2}, "prompt"),
    ("/completions", {"model": "tiny", "prompt": [10**9]}, "prompt"),
    ("/completions", {"model": "tiny", "prompt": "x", "stop": [""]}, "stop"),
    ("/completions", {"model": "tiny", "prompt": "x", "stream_options": {
        "include_usage": True}}, None),
    ("/chat/completions", {"model": "tiny", "messages": []}, "messages"),
    ("/chat/completions", {"model": "tiny", "messages": [{"role": "wizard", "content": "x"}]},
     "messages[0].role"),
    ("/chat/completions", {"model": "tiny", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "http://x"}}]}]}, None),
    ("/chat/completions", {"model": "tiny", "messages": CHAT, "top_logprobs": 3}, None),
    ("/chat/completions", {"model": "tiny", "messages": CHAT,
                           "response_format": {"type": "yaml"}}, None),
    ("/chat/completions", {"model": "tiny", "messages": CHAT, "tool_choice": "required"}, None),
    ("/chat/completions", {"model": "tiny", "messages": CHAT, "max_completion_tokens": -1},
     "max_completion_tokens"),
    ("/embeddings", {"model": "minilm", "input": []}, "input"),
    ("/embeddings", {"model": "minilm", "input": "x", "encoding_format": "int8"}, None),
    ("/embeddings", {"model": "minilm", "input": "x", "dimensions": 10}, "dimensions"),
    # A generator asked for embeddings, an encoder asked to chat: wrong endpoint, not 500.
    ("/embeddings", {"model": "tiny", "input": "x"}, "model"),
    ("/chat/completions", {"model": "minilm", "messages": CHAT}, "model"),
]


@pytest.mark.parametrize(("path", "body", "param"), BAD_BODIES,
                         ids=[f"{p}:{'-'.join(map(str, b))}" for p, b, _ in BAD_BODIES])
def test_bad_parameters_are_400(live, path, body, param):
    err = assert_error(post(live, path, json=body), 400, "invalid_request_error")
    if param is not None:
        assert err["param"] == param, err


def test_unknown_model_is_404(client, live):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-17", messages=CHAT)
    assert info.value.code == "model_not_found" and "tiny" in info.value.message
    for path in ("/completions", "/embeddings"):
        assert_error(post(live, path, json={"model": "nope", "prompt": "x", "input": "x"}),
                     404, "invalid_request_error", "model", "model_not_found")
    assert_error(httpx.get(live.base_url + "/models/nope"), 404, "invalid_request_error")
    assert_error(httpx.get(live.url + "/v2/whatever"), 404, "not_found_error")


def test_prompt_longer_than_context(client, live):
    long_prompt = " ".join(["fox"] * 2000)
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(model="tiny", prompt=long_prompt, max_tokens=4)
    assert info.value.code == "context_length_exceeded"
    # Fits alone, but not together with the completion asked for.
    err = assert_error(post(live, "/chat/completions", json={
        "model": "tiny", "messages": [{"role": "user", "content": " ".join(["fox"] * 300)}],
        "max_tokens": 400}), 400, "invalid_request_error", code="context_length_exceeded")
    assert "max_tokens" in err["message"]
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="minilm", input=long_prompt)
    assert info.value.code == "context_length_exceeded"


@pytest.mark.parametrize("stream", [False, True])
def test_full_queue_is_503(client, live, stream):
    engine = live.models["tiny"].engine
    old, engine.max_queue = engine.max_queue, 0  # nothing more may queue
    try:
        with pytest.raises(openai.InternalServerError) as info:
            client.chat.completions.create(model="tiny", messages=CHAT, max_tokens=2,
                                           stream=stream)
        assert info.value.status_code == 503
        assert info.value.body["type"] == "unavailable_error"
        # Once said "... retry later Retry later."
        assert info.value.body["message"].lower().count("retry later") == 1
    finally:
        engine.max_queue = old


def test_api_key(lm_folder):
    models = {"keyed": load_entry(lm_folder, "keyed", max_num_seqs=4)}
    with BackgroundServer(create_app(models, api_key="s3cret")) as server:
        url = server.url + "/v1"
        for key in ("wrong", "s3cret-and-more"):
            with openai.OpenAI(base_url=url, api_key=key, max_retries=0) as bad, \
                    pytest.raises(openai.AuthenticationError) as info:
                bad.models.list()
            assert info.value.body["type"] == "authentication_error"
        r = httpx.post(url + "/completions", json={"model": "keyed", "prompt": "x"})
        assert_error(r, 401, "authentication_error", code="invalid_api_key")
        with openai.OpenAI(base_url=url, api_key="s3cret", max_retries=0) as good:
            out = good.completions.create(model="keyed", prompt="The quick", max_tokens=3,
                                         temperature=0)
            assert out.usage.completion_tokens == 3
        # Health, metrics and the page stay open: probes and browsers carry no key.
        for path in ("/health", "/metrics", "/"):
            assert httpx.get(server.url + path).status_code == 200
