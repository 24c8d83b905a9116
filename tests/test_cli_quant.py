"""`lmstack quant`: writes a folder that `lmstack.load` opens (a real subprocess); bad input is
one line, exit 2 (in-process through typer's runner: no torch start-up per case)."""

from __future__ import annotations

import pytest
import torch
from cli_helpers import run_lmstack
from typer.testing import CliRunner

import lmstack
from lmstack.cli import app
from lmstack.models import LlamaConfig, LlamaForCausalLM, save_model
from lmstack.quant import QuantLinear


@pytest.fixture
def tiny_folder(tmp_path):
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64))
    save_model(model, tmp_path / "tiny")
    return tmp_path / "tiny"


def test_quant_writes_a_loadable_folder(tiny_folder, tmp_path):
    out = tmp_path / "q"
    r = run_lmstack("quant", str(tiny_folder), "--scheme", "q4_1", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stdout and "MiB" in r.stdout
    model, _ = lmstack.load(out)
    assert isinstance(model.model.layers[0].mlp.up_proj, QuantLinear)
    assert model.model.layers[0].mlp.up_proj.scheme == "q4_1"


@pytest.mark.parametrize("args,message", [
    (["--scheme", "int3", "--out", "x"], "--scheme must be one of"),
    (["--scheme", "int8"], "--out DIR is required"),
    (["--scheme", "int4-awq", "--out", "x"], "pass --text FILE"),
])
def test_bad_options_are_one_line(tiny_folder, args, message):
    r = CliRunner().invoke(app, ["quant", str(tiny_folder), *args])
    assert r.exit_code != 0 and isinstance(r.exception, ValueError)
    assert message in str(r.exception)


def test_eval_needs_a_text(tiny_folder, tmp_path):
    r = CliRunner().invoke(app, ["quant", "eval", str(tiny_folder)])
    assert "usage: lmstack quant eval MODEL --text FILE" in str(r.exception)
    r = CliRunner().invoke(app, ["quant", "eval", str(tiny_folder), "--text",
                                 str(tmp_path / "none.txt")])
    assert "no such text file" in str(r.exception)
