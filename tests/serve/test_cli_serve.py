"""`python -m lmstack serve` as a user runs it: two models by name on a free loopback port,
asked through the openai client, stopped with Ctrl-C; bad arguments fail in one line."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import openai


def lmstack(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "lmstack", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            **kwargs)


def test_serve_command(lm_folder, minilm_folder, free_port):
    port = free_port
    proc = lmstack("serve", str(lm_folder), str(minilm_folder), "--name", "writer", "--name",
                   "embedder", "--port", str(port), "--max-num-seqs", "4",
                   "--allowed-hosts", "127.0.0.1")
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(url + "/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not come up in 90 s"
            time.sleep(0.2)
        with openai.OpenAI(base_url=url + "/v1", api_key="-", max_retries=0) as client:
            assert {m.id for m in client.models.list().data} == {"writer", "embedder"}
            out = client.completions.create(model="writer", prompt="The quick", max_tokens=4,
                                            temperature=0)
            assert out.usage.completion_tokens == 4
            vec = client.embeddings.create(model="embedder", input="hi").data[0].embedding
            assert len(vec) == 384
        # --allowed-hosts: a page on another name (DNS rebinding) is turned away.
        evil = httpx.get(url + "/v1/models", headers={"host": "attacker.example"}, timeout=10)
        assert evil.status_code == 400 and evil.json()["error"]["code"] == "host_not_allowed"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            log = proc.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode == 0, log
    assert "writer" in log and f"http://127.0.0.1:{port}/" in log


def free_ports(n: int) -> list[int]:
    """n distinct loopback ports nothing listens on (held open together while chosen)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def test_serve_bad_arguments(lm_folder, tmp_path):
    cases = [
        (["serve", str(tmp_path / "missing")], "no such model folder"),
        (["serve", str(lm_folder), "--name", "a", "--name", "b"], "one name per folder"),
        (["serve", str(tmp_path)], "not a model folder"),
        # 0 once started a server that answered every request with 503.
        (["serve", str(lm_folder), "--max-queue", "0"], "--max-queue must be >= 1"),
        (["serve", str(lm_folder), "--speculative-tokens", "-1"],
         "--speculative-tokens must be >= 0"),
        (["serve", str(lm_folder), "--log-format", "xml"], "--log-format must be one of"),
        (["serve", str(lm_folder), "--grace-seconds", "-1"], "--grace-seconds must be >= 0"),
        (["serve", "--image-model", str(tmp_path)], "no config.json there"),
    ]
    # All at once: each run pays for importing torch. Each on its own free port: the port
    # check comes first, so a busy port would hide the error under test, and a load error
    # surfaces after the port is bound, so runs sharing one port would collide.
    procs = [(lmstack(*args, "--port", str(port)), words)
             for (args, words), port in zip(cases, free_ports(len(cases)), strict=True)]
    for proc, words in procs:
        out = proc.communicate(timeout=120)[0]
        assert proc.returncode == 2, out
        assert words in out and "Traceback" not in out
