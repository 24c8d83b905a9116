"""`lmstack chat` run as a user would: Ctrl-C at the prompt ends the session with exit 130 and
one line saying so (so `lmstack chat M && next` does not carry on)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import torch
from cli_helpers import start_lmstack

from lmstack.models import LlamaConfig, LlamaForCausalLM, save_model
from lmstack.tokenizer import train_bpe_from_iterator


@pytest.fixture(scope="module")
def chat_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("chat-model")
    tok = train_bpe_from_iterator(["Hello there, how are you today?"] * 20, vocab_size=300,
                                  show_progress=False)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                      max_position_embeddings=128, tie_word_embeddings=True)
    save_model(LlamaForCausalLM(cfg).eval(), folder)
    tok.save(folder)
    return folder


def test_ctrl_c_at_the_prompt_exits_130_with_one_line(chat_folder):
    proc = start_lmstack("chat", str(chat_folder), "--max-tokens", "4")
    try:
        proc.stdin.write("hello\n")
        proc.stdin.flush()
        # The reply's stats line ("N tokens, ...") means the second prompt is waiting.
        seen = ""
        while "tok/s" not in seen:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            seen += line
        time.sleep(0.5)  # from the stats line to the prompt's read: let it get there
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("interrupted after 2 messages"), err
