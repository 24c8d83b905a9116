"""`lmstack serve` with no model argument, as a user runs it: SmolLM2 behind the OpenAI API on
127.0.0.1, asked a factual question by the official `openai` client, streamed and not."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import httpx
import openai

sys.path.insert(0, str(Path(__file__).parents[1]))
from cli_helpers import start_lmstack

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def test_serve_with_no_model_argument_serves_smollm2(smollm2_path, free_port):
    url = f"http://127.0.0.1:{free_port}"
    started = time.monotonic()
    proc = start_lmstack("serve", "--port", str(free_port), "--max-num-seqs", "2")
    try:
        while True:  # opening the model takes seconds: up in well under the 120 s allowed
            assert proc.poll() is None, proc.communicate()
            try:
                if httpx.get(url + "/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() - started < 120, "the server did not come up in 120 s"
            time.sleep(0.2)
        print(f"lmstack serve: first 200 on /ready after {time.monotonic() - started:.1f} s")
        with openai.OpenAI(base_url=url + "/v1", api_key="-", max_retries=0,
                           timeout=120) as client:
            assert [m.id for m in client.models.list().data] == ["smollm2"]
            whole = client.chat.completions.create(model="smollm2", messages=QUESTION,
                                                   temperature=0, max_tokens=16)
            chunks = list(client.chat.completions.create(
                model="smollm2", messages=QUESTION, temperature=0, max_tokens=16, stream=True))
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    answer = whole.choices[0].message.content
    assert "Paris" in answer and "<|im_end|>" not in answer
    # It ended its turn itself (<|im_end|>), before the token limit.
    assert whole.choices[0].finish_reason == "stop" and whole.usage.completion_tokens < 16
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == answer
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert proc.returncode == 0, err
    assert "smollm2 (generate)" in out
