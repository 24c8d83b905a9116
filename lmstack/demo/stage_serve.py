"""Demo stage `serve`: the trained model behind the OpenAI API on loopback, asked a question
by the official `openai` client. Follows the OpenAI Python client's streaming usage."""

from __future__ import annotations

import time
from typing import Any

from lmstack.demo.registry import Stage
from lmstack.demo.run import fence
from lmstack.demo.verdict import is_near_empty

QUESTION = "What does the len() function return?"
COMPLETION_PROMPT = "Return the number of"


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
    messages = [{"role": "user", "content": QUESTION}]
    chat_tokens = room(entry, entry.tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=False), 64)
    completion_tokens = room(entry, COMPLETION_PROMPT, 32)
    with BackgroundServer(create_app({"demo": entry})) as server, openai.OpenAI(
            base_url=server.url + "/v1", api_key="demo", max_retries=0, timeout=300) as client:
        started = time.perf_counter()
        first_at, answer, usage = None, "", None
        stream = client.chat.completions.create(
            model="demo", messages=messages, max_tokens=chat_tokens,
            temperature=0, stream=True, stream_options={"include_usage": True})
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                first_at = first_at or time.perf_counter()
                answer += chunk.choices[0].delta.content
            if chunk.usage is not None:
                usage = chunk.usage
        done = time.perf_counter()
        completion = client.completions.create(model="demo", prompt=COMPLETION_PROMPT,
                                               max_tokens=completion_tokens, temperature=0)
        url = server.url
    tokens = usage.completion_tokens if usage else 0
    ttft = (first_at or done) - started
    rate = (tokens - 1) / (done - first_at) if first_at and tokens > 1 and done > first_at \
        else 0.0
    run.console.print(f"Q: {QUESTION}\nA: {answer.strip()[:200]}")
    completion_text = completion.choices[0].text
    run.section("Serving", "\n".join([
        (f"`lmstack serve` ran the trained model at {url} (OpenAI API; chat page at `/`). "
         "The official `openai` client asked, streaming, at temperature 0:"),
        "", f"**Q:** {QUESTION}", "", "**A:**", "", fence(answer), "",
        (f"Time to first token {ttft * 1000:.0f} ms, whole answer {done - started:.2f} s, "
         f"{tokens} tokens ({rate:.1f} tokens/s while streaming). Plain completion of "
         f"`{COMPLETION_PROMPT}`:"), "",
        fence(COMPLETION_PROMPT + completion_text), "",
        describe_replies(answer, completion_text),
    ]))


def room(entry: Any, prompt: str, wanted: int) -> int:
    """`wanted` new tokens, or fewer where the prompt leaves less of the context free."""
    used = len(entry.tokenizer.encode(prompt, add_special_tokens=False))
    return max(1, min(wanted, entry.max_model_len - used))


def describe_replies(answer: str, completion: str) -> str:
    """What the two replies show, from what they hold rather than what we hoped for."""
    empty = [what for what, text in (("chat answer", answer), ("plain completion", completion))
             if is_near_empty(text)]
    facts = [(f"The {' and the '.join(empty)} {'are' if len(empty) > 1 else 'is'} empty or "
              "nearly so (the model stopped at once or wrote only whitespace), as an "
              "undertrained model does.")] if empty else []
    facts.append("This model was only pretrained on the corpus, never tuned to follow "
                 "instructions, so at best it continues text in the corpus's style; it does "
                 "not answer questions. The server, streaming and client above work the same "
                 "for a model that does.")
    return " ".join(facts)


STAGE = Stage("serve", 40, stage_serve, "the model behind the OpenAI API, asked via openai",
              needs=("model",))
