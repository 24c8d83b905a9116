"""A real uvicorn on 127.0.0.1 serving a tiny random Llama (trained BPE tokenizer) and the real
all-MiniLM-L6-v2, shared by the server tests; clients are the official `openai` package."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from lmstack.models import LlamaConfig, LlamaForCausalLM, save_model
from lmstack.serve import BackgroundServer, ModelEntry, create_app, load_entry

# The engine tests' helpers (one definition of the "peaky" weights for both folders).
sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))
from engine_helpers import peaky

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Return the number of items in a container.",
    "A server streams tokens to many clients at once.",
    "def add(a, b):\n    return a + b\n",
    "你好，世界。今天天气很好。 🙂 🚀",
    '{"name": "lmstack", "tokens": [1, 2, 3]}',
]
MAX_LEN = 512


def build_tiny_lm(folder: Path) -> Path:
    """Random 2-layer Llama + a byte-level BPE trained in well under a second. The weights
    are the engine tests' "peaky" ones: large logit margins, so greedy outputs cannot flip
    on a near-tie when batch shape reorders float sums (the 64-stream equality test)."""
    from lmstack.tokenizer import train_bpe_from_iterator

    tok = train_bpe_from_iterator(CORPUS * 20, vocab_size=400, show_progress=False)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=MAX_LEN, tie_word_embeddings=True,
                      initializer_range=0.2)
    save_model(peaky(LlamaForCausalLM(cfg)), folder)
    tok.save(folder)
    return folder


@pytest.fixture(scope="session")
def lm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_lm(tmp_path_factory.mktemp("tiny-lm"))


@dataclass
class Live:
    url: str
    models: dict[str, ModelEntry]

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def engine_stats(self, name: str = "tiny") -> dict:
        return self.models[name].stats()


@pytest.fixture(scope="session")
def live(lm_folder: Path, minilm_folder: Path):
    """The shared server: "tiny" generates (64 slots, as the concurrency test needs) and
    "minilm" embeds."""
    models = {"tiny": load_entry(lm_folder, "tiny", max_num_seqs=64, max_model_len=MAX_LEN),
              "minilm": load_entry(minilm_folder, "minilm")}
    with BackgroundServer(create_app(models)) as server:
        yield Live(server.url, models)


@pytest.fixture()
def client(live: Live):
    openai = pytest.importorskip("openai")
    # No retries: a retried 503 or 500 would hide exactly what the error tests look for.
    with openai.OpenAI(base_url=live.base_url, api_key="unused", max_retries=0,
                       timeout=60) as c:
        yield c
