"""64 streaming clients at once get exactly what they get one at a time (greedy), and a client
that hangs up mid-generation gives its engine slot back."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import openai

WORDS = ["quick", "brown", "fox", "jumps", "over", "lazy", "dog", "server", "streams", "tokens",
         "many", "clients"]


def prompts(n: int) -> list[str]:
    return [f"The {WORDS[i % len(WORDS)]} {WORDS[(i * 7 + 3) % len(WORDS)]} {i}"
            for i in range(n)]


def test_64_concurrent_streams_match_sequential(live):
    texts = prompts(64)
    with openai.OpenAI(base_url=live.base_url, api_key="-", max_retries=0) as c:
        sequential = [c.completions.create(model="tiny", prompt=p, max_tokens=12,
                                           temperature=0).choices[0].text for p in texts]

    async def one(client: openai.AsyncOpenAI, prompt: str) -> tuple[str, str | None, int]:
        stream = await client.completions.create(
            model="tiny", prompt=prompt, max_tokens=12, temperature=0, stream=True,
            stream_options={"include_usage": True})
        text, finish, usage = "", None, -1
        async for chunk in stream:
            for choice in chunk.choices:
                text += choice.text
                finish = choice.finish_reason or finish
            if chunk.usage is not None:
                usage = chunk.usage.completion_tokens
        return text, finish, usage

    async def all_at_once() -> list:
        async with openai.AsyncOpenAI(base_url=live.base_url, api_key="-", max_retries=0,
                                      timeout=120) as client:
            return await asyncio.gather(*(one(client, p) for p in texts))

    results = asyncio.run(all_at_once())
    assert [r[0] for r in results] == sequential
    assert all(finish in ("length", "stop") and 0 < usage <= 12
               for _, finish, usage in results)
    assert live.engine_stats()["running"] == 0


def wait_idle(live, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = live.engine_stats()
        if not (stats["running"] or stats["waiting"] or stats["in_flight"]):
            return stats
        time.sleep(0.05)
    raise AssertionError(f"engine still busy after {timeout}s: {live.engine_stats()}")


def aborted_count(live) -> int:
    text = httpx.get(live.url + "/metrics").text
    m = re.search(r'^lmstack_aborted_requests_total\{model="tiny"\} (\d+)$', text,
                  re.MULTILINE)
    return int(m.group(1)) if m else 0


LONG = {"model": "tiny", "prompt": "The quick brown fox", "max_tokens": 480,
        "temperature": 0, "ignore_eos": True}


def test_disconnect_mid_stream_frees_the_slot(live):
    wait_idle(live)
    before = aborted_count(live)
    with httpx.Client(timeout=30) as http, http.stream(
            "POST", live.base_url + "/completions", json={**LONG, "stream": True}) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        got = [line for line, _ in zip(lines, range(6), strict=False) if line]
        assert got and got[0].startswith("data: ")
        assert live.engine_stats()["running"] + live.engine_stats()["waiting"] == 1
        # Leaving the block closes the connection with 470-odd tokens still to go.
    wait_idle(live)
    assert aborted_count(live) == before + 1


def test_disconnect_while_waiting_for_a_whole_response(live):
    wait_idle(live)
    before = aborted_count(live)
    try:
        # 8 choices x 480 tokens: seconds of work even for a fast engine on a tiny model.
        httpx.post(live.base_url + "/completions", json={**LONG, "n": 8}, timeout=0.3)
    except httpx.TimeoutException:
        pass  # the client gave up; the server must notice and stop generating
    else:
        raise AssertionError("3840 tokens came back within 0.3 s; the test needs more work")
    wait_idle(live)
    assert aborted_count(live) == before + 1
