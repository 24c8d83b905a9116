"""A tiny random Llama with a byte-level BPE tokenizer (English and Chinese), saved as a Hugging
Face folder so transformers can load the very same weights as the reference."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from lmstack.models import LlamaConfig, LlamaForCausalLM
from lmstack.models.hub import save_model
from lmstack.tokenizer import Tokenizer, train_bpe_from_iterator

os.environ["HF_HUB_OFFLINE"] = "1"
DATA = Path(__file__).parent / "data"
TEXT = ["Question: Which gas do plants take in? Answer: carbon dioxide",
        "Question: What is the capital of France? Answer: Paris",
        "The answer is breathing mask, not safety goggles or rubber gloves.",
        "水在标准大气压下的沸点是多少摄氏度？一百度。植物通过光合作用把阳光变成养分。"]


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-llama")
    tok = train_bpe_from_iterator(TEXT * 20, vocab_size=400, show_progress=False)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=256, tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # larger weights: log-probs depend strongly on the context
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(6)
    save_model(model, folder)
    tok.save(folder)
    return folder


@pytest.fixture(scope="session")
def tiny(tiny_folder) -> tuple[LlamaForCausalLM, Tokenizer]:
    from lmstack.models.hub import load_model

    return load_model(tiny_folder).eval(), Tokenizer.from_folder(tiny_folder)


@pytest.fixture(scope="session")
def hf_model(tiny_folder):
    transformers = pytest.importorskip("transformers")
    return transformers.LlamaForCausalLM.from_pretrained(tiny_folder,
                                                         dtype=torch.float32).eval()
