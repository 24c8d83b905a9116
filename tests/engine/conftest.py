"""Fixtures for the engine tests: tiny models, a trained byte-level BPE, a model folder.
Plain helpers live in engine_helpers.py (importable from the test modules)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from engine_helpers import CORPUS, tiny_gpt2, tiny_llama

from lmstack.models import LlamaForCausalLM, save_model

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def llama() -> LlamaForCausalLM:
    return tiny_llama()


@pytest.fixture(scope="session", params=["llama", "gpt2"])
def any_model(request):
    return tiny_llama() if request.param == "llama" else tiny_gpt2()


@pytest.fixture(scope="session")
def tokenizer():
    from lmstack.tokenizer import train_bpe_from_iterator

    return train_bpe_from_iterator(CORPUS * 20, vocab_size=290, show_progress=False)


@pytest.fixture(scope="session")
def chat_folder(tmp_path_factory, tokenizer) -> Path:
    """A model folder `lmstack.load` (and so `lmstack chat`) can open."""
    folder = tmp_path_factory.mktemp("tiny-chat")
    save_model(tiny_llama(), folder)
    tokenizer.save(folder)
    return folder


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny models gain nothing from intra-op threads, and on a shared machine two threads
    # that wait on each other at every op make these tests many times slower.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
