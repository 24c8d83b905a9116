"""`lmstack prune` and `lmstack export onnx` as a user runs them: real subprocesses on a tiny
saved Llama folder; bad input is one line and exit 2."""

from __future__ import annotations

import re

import pytest
import torch
from cli_helpers import run_lmstack

from lmstack.models import LlamaConfig, LlamaForCausalLM, load_model


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, initializer_range=0.2))
    path = tmp_path_factory.mktemp("tiny")
    model.save_pretrained(path)
    return path


@pytest.mark.parametrize(("method", "check"), [
    ("magnitude", lambda m: (m.model.layers[0].mlp.up_proj.weight == 0).float().mean() == 0.5),
    ("heads", lambda m: m.config.num_attention_heads == 2),
])
def test_prune_writes_a_loadable_smaller_model(folder, tmp_path, method, check):
    r = run_lmstack("prune", str(folder), "--method", method, "--sparsity", "0.5",
                    "--out", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert "parameters" in r.stdout
    assert check(load_model(tmp_path / "out"))


def test_export_onnx_reports_its_parity(folder, tmp_path):
    pytest.importorskip("onnxruntime")
    r = run_lmstack("export", "onnx", str(folder), "--out", str(tmp_path), "--int8")
    assert r.returncode == 0, r.stderr
    gaps = [float(g) for g in re.findall(r"from lmstack: (\S+)", " ".join(r.stdout.split()))]
    assert len(gaps) == 2 and gaps[0] < 1e-4  # fp32, then int8
    assert (tmp_path / "model.onnx").is_file() and (tmp_path / "model_int8.onnx").is_file()


@pytest.mark.parametrize(("args", "says"), [
    (["prune", "{m}", "--method", "random", "--sparsity", "0.5", "--out", "{o}"], "--method"),
    (["prune", "{m}", "--method", "heads", "--sparsity", "1.5", "--out", "{o}"], "--sparsity"),
    (["export", "onnx", "{o}/nothing", "--out", "{o}"], "no such model"),
    (["prune", "{m}", "--method", "heads", "--sparsity", "0.5", "--out", "{o}",
      "--calibration", "{m}/model.safetensors"], "UTF-8"),
])
def test_bad_input_is_one_line(folder, tmp_path, args, says):
    r = run_lmstack(*[a.format(m=folder, o=tmp_path) for a in args])
    assert r.returncode == 2, r.stderr
    assert says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
