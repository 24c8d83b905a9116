"""Shared fixtures for the training tests: a small corpus, tokenizer and token shards."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def builtin_corpus(max_chars: int = 200_000) -> str:
    """The Python language reference topics: English text present wherever Python is."""
    from pydoc_data import topics

    return "\n\n".join(topics.topics[k] for k in sorted(topics.topics))[:max_chars]


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text(builtin_corpus(), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tokenizer_dir(tmp_path_factory, corpus_file) -> Path:
    from lmstack.tokenizer import train_bpe

    folder = tmp_path_factory.mktemp("tok")
    train_bpe([corpus_file], vocab_size=384, show_progress=False).save(folder)
    return folder


@pytest.fixture(scope="session")
def shards_dir(tmp_path_factory, corpus_file, tokenizer_dir) -> Path:
    from lmstack.data import prepare_shards
    from lmstack.tokenizer import Tokenizer

    out = tmp_path_factory.mktemp("shards") / "data"
    return prepare_shards([corpus_file], Tokenizer.from_folder(tokenizer_dir), out,
                          val_fraction=0.1, show_progress=False)


TINY_LLAMA = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
              "num_attention_heads": 4, "num_key_value_heads": 2,
              "max_position_embeddings": 128}


def tiny_config(tokenizer_dir: Path, shards_dir: Path, out_dir: Path, **training) -> dict:
    """A whole-run config for a ~30K-parameter Llama; `training` overrides its run section."""
    return {
        "tokenizer": str(tokenizer_dir),
        "model": {"architecture": "LlamaForCausalLM", "config": dict(TINY_LLAMA)},
        "data": {"shards": str(shards_dir), "seq_len": 32},
        "optimizer": {"lr": 3e-3},
        "schedule": {"warmup_steps": 5},
        "training": {"out_dir": str(out_dir), "max_steps": 20, "micro_batch_size": 4,
                     "threads": 1, "log_every": 1, "eval_every": 10, "eval_batches": 4,
                     "save_every": 10, "progress": False, **training},
    }


def lmstack_cmd() -> list[str]:
    """The installed `lmstack` script when present, else `python -m lmstack` (same CLI)."""
    script = Path(sys.executable).parent / "lmstack"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "lmstack"]


def run_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = f"{REPO}{os.pathsep}{env.get('PYTHONPATH', '')}"
    env["OMP_NUM_THREADS"] = "1"
    return env


def run_cli(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*lmstack_cmd(), *args], cwd=cwd, env=run_env(), capture_output=True,
                          text=True, timeout=timeout, check=False)


SFT = [{"instruction": f"Who are you? ({i})", "output": "I am a tiny assistant."}
       for i in range(12)]


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory, tokenizer_dir) -> Path:
    """A ~60K-parameter Llama with the trained BPE tokenizer beside it: an HF folder, for
    `lmstack finetune` (transformers and PEFT load it too)."""
    import torch

    from lmstack.models.llama import LlamaConfig, LlamaForCausalLM
    from lmstack.tokenizer import Tokenizer

    tok = Tokenizer.from_folder(tokenizer_dir)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256))
    folder = tmp_path_factory.mktemp("tiny_model")
    model.save_pretrained(folder)
    tok.save(folder)
    return folder


def write_config(tmp_path: Path, model_dir: Path, records: list, **top) -> Path:
    """A `lmstack finetune` YAML over `records` (3 steps, 1 thread); `top` sets top-level keys."""
    import json

    import yaml

    data = tmp_path / "data.json"
    data.write_text(json.dumps(records))
    cfg = {"model": str(model_dir), "data": {"files": [str(data)], "max_len": 64,
                                             "val_fraction": 0.25},
           "optimizer": {"lr": 1e-2},
           "training": {"out_dir": str(tmp_path / "out"), "max_steps": 3, "micro_batch_size": 2,
                        "threads": 1, "log_every": 1, "eval_every": 3, "eval_batches": 1,
                        "progress": False}}
    cfg.update(top)
    path = tmp_path / "ft.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path
