"""`lmstack serve` as a replica behind a load balancer: a real subprocess on 127.0.0.1 serving
the tiny Llama, configured from LMSTACK_* variables with a flag overriding one of them.

Readiness is false while the model loads (liveness already true), request ids are echoed,
and SIGTERM drains: a stream admitted before the signal runs to its last token while new
requests get an OpenAI-shaped 503, then the process exits 0."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import httpx


def start_replica(tmp_path, env: dict[str, str], *args: str) -> tuple[subprocess.Popen, object]:
    log = (tmp_path / "replica.log").open("w+")
    proc = subprocess.Popen([sys.executable, "-m", "lmstack", "serve", *args],
                            env={**os.environ, "HF_HUB_OFFLINE": "1", **env},
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    return proc, log


def wait_ready(proc: subprocess.Popen, url: str, log) -> list[tuple[int, int, str]]:
    """Poll /ready and /health until ready; returns what each poll saw."""
    seen, deadline = [], time.monotonic() + 120
    while True:
        assert proc.poll() is None, log.seek(0) or log.read()
        try:
            ready, health = httpx.get(url + "/ready"), httpx.get(url + "/health")
            seen.append((ready.status_code, health.status_code, ready.json()["status"]))
            if ready.status_code == 200:
                return seen
        except httpx.TransportError:
            pass  # the port is not open yet
        assert time.monotonic() < deadline, "the replica was not ready in 120 s"
        time.sleep(0.05)


def test_sigterm_drains_and_env_configures(lm_folder, free_port, tmp_path):
    url = f"http://127.0.0.1:{free_port}"
    env = {"LMSTACK_MODEL": str(lm_folder), "LMSTACK_NAME": "tiny",
           "LMSTACK_PORT": "1",  # overridden by the flag: port 1 would be refused
           "LMSTACK_LOG_FORMAT": "json", "LMSTACK_GRACE_SECONDS": "60"}
    proc, log = start_replica(tmp_path, env, "--port", str(free_port))
    try:
        seen = wait_ready(proc, url, log)
        # Loading: alive (200 on /health) but not ready (503 on /ready).
        assert (503, 200, "loading") in seen, seen
        with httpx.Client(base_url=url, timeout=60) as client:
            body = {"model": "tiny", "prompt": "The quick", "max_tokens": 4}
            sent = client.post("/v1/completions", json=body, headers={"x-request-id": "rid-7"})
            assert sent.status_code == 200 and sent.headers["x-request-id"] == "rid-7"
            fresh = client.post("/v1/completions", json=body).headers["x-request-id"]
            assert re.fullmatch(r"[0-9a-f]{32}", fresh)
            hostile = client.post("/v1/completions", json=body,
                                  headers={"x-request-id": 'a"b\\n'}).headers["x-request-id"]
            assert re.fullmatch(r"[0-9a-f]{32}", hostile)  # not echoed into headers or logs

            stream = {"model": "tiny", "prompt": "The quick", "max_tokens": 400,
                      "ignore_eos": True, "stream": True,
                      "stream_options": {"include_usage": True}}
            with client.stream("POST", "/v1/completions", json=stream) as response:
                lines = response.iter_lines()
                first = next(line for line in lines if line.startswith("data: "))
                proc.send_signal(signal.SIGTERM)
                while (ready := client.get("/ready")).status_code == 200:
                    time.sleep(0.01)
                assert ready.json() == {"status": "draining", "in_flight": 1}
                refused = client.post("/v1/completions", json=body)
                assert refused.status_code == 503, refused.text
                error = refused.json()["error"]
                assert error["type"] == "unavailable_error" and error["code"] == "draining"
                assert client.get("/health").status_code == 200  # draining is still alive
                rest = [line for line in lines if line.startswith("data: ")]
            chunks = [json.loads(x[6:]) for x in [first, *rest] if x != "data: [DONE]"]
            assert rest[-1] == "data: [DONE]"
            assert chunks[-2]["choices"][0]["finish_reason"] == "length"
            assert chunks[-1]["usage"]["completion_tokens"] == 400  # every token arrived
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log.seek(0)
    records = [json.loads(x) for x in log if x.startswith("{")]
    assert {"request_id": "rid-7", "status": 200} in [
        {k: r.get(k) for k in ("request_id", "status")} for r in records
        if r["logger"] == "lmstack.access"]
    assert any(r["message"].startswith("drained in") for r in records)
