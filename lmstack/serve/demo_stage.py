"""The demo's serving stage: the trained model behind the OpenAI API on loopback, asked a
question by the official `openai` client. Follows the OpenAI Python client's streaming usage."""

from __future__ import annotations

import time
from typing import Any

QUESTION = "What does the len() function return?"
COMPLETION_PROMPT = "Return the number of"


def _fence(text: str) -> str:
    # Model output may hold anything, backticks included: a longer fence always closes.
    shown = text.strip() or (f"({len(text)} whitespace characters)" if text else "(empty)")
    return f"````text\n{shown}\n````"


def stage_serve(run: Any) -> None:
    """Start the server on a free 127.0.0.1 port, stream one chat answer and one plain
    completion through `openai`, record them with TTFT, latency and tokens/s, shut down."""
    from lmstack.serve import BackgroundServer, create_app, load_entry

    folder = run.artifacts.get("model")
    if folder is None:
        run.section("Serving", "Skipped: no trained model folder (the training stage did "
                    "not leave one).")
        return
    try:
        import openai
    except ImportError:
        run.section("Serving", "Skipped: the `openai` client is not installed "
                    "(`pip install openai`, or `make install` for the dev extra).")
        return
    entry = load_entry(folder, "demo", max_num_seqs=8)
    with BackgroundServer(create_app({"demo": entry})) as server, openai.OpenAI(
            base_url=server.url + "/v1", api_key="demo", max_retries=0, timeout=300) as client:
        started = time.perf_counter()
        first_at, answer, usage = None, "", None
        stream = client.chat.completions.create(
            model="demo", messages=[{"role": "user", "content": QUESTION}], max_tokens=64,
            temperature=0, stream=True, stream_options={"include_usage": True})
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                first_at = first_at or time.perf_counter()
                answer += chunk.choices[0].delta.content
            if chunk.usage is not None:
                usage = chunk.usage
        done = time.perf_counter()
        completion = client.completions.create(model="demo", prompt=COMPLETION_PROMPT,
                                               max_tokens=32, temperature=0)
        url = server.url
    tokens = usage.completion_tokens if usage else 0
    ttft = (first_at or done) - started
    rate = (tokens - 1) / (done - first_at) if first_at and tokens > 1 and done > first_at \
        else 0.0
    run.console.print(f"Q: {QUESTION}\nA: {answer.strip()[:200]}")
    run.section("Serving", "\n".join([
        (f"`lmstack serve` ran the trained model at {url} (OpenAI API; chat page at `/`). "
         "The official `openai` client asked, streaming, at temperature 0:"),
        "", f"**Q:** {QUESTION}", "", "**A:**", "", _fence(answer), "",
        (f"Time to first token {ttft * 1000:.0f} ms, whole answer {done - started:.2f} s, "
         f"{tokens} tokens ({rate:.1f} tokens/s while streaming). The model only pretrained "
         "on docstrings, so it continues text rather than converses: the plain completion "
         f"of `{COMPLETION_PROMPT}` shows it better:"), "",
        _fence(COMPLETION_PROMPT + completion.choices[0].text),
    ]))
