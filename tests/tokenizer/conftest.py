"""Shared fixtures for the tokenizer tests: a small multilingual corpus and trained tokenizers.

Everything is offline: transformers must never reach for the Hugging Face Hub.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lmstack.tokenizer import Tokenizer, train_bpe

# Set before any test module imports transformers (lmstack.tokenizer itself never does).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

# English, Chinese, emoji (incl. a skin-tone modifier and a ZWJ family) and accented Latin, so
# byte-level merges have multi-byte characters to learn from.
CORPUS = """The quick brown fox jumps over the lazy dog. Tokenizers turn text into numbers.
Large language models read tokens, not characters; byte-level BPE never needs [UNK].
我爱自然语言处理。你好，世界！今天天气很好，我们去公园散步吧。
机器学习和深度学习正在改变世界。语言模型可以写诗，也可以写代码。
Emoji too: 🙂 🚀 👍🏽 👨‍👩‍👧 ❤️ — café, naïve, résumé, Straße.
def add(a, b):\n    return a + b  # code has spaces   and tabs\t!
"""

# Text for parity checks: it mixes scripts and includes bytes the corpus never showed.
MIXED_TEXT = (
    "Hello, world! 你好，世界！ 🙂🚀👍🏽 Tokenizers 处理 emoji ✨ and ünïcödé 𝔘 — "
    "<|im_start|>user  two  spaces\n\tand a tab<|im_end|>"
)


@pytest.fixture(scope="session")
def mixed_text() -> str:
    return MIXED_TEXT


@pytest.fixture(scope="session")
def corpus_text() -> str:
    return CORPUS


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    # Repeat so that pairs pass min_frequency and real merges are learned.
    path.write_text(CORPUS * 20, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def trained(corpus_file: Path) -> Tokenizer:
    return train_bpe([corpus_file], vocab_size=600, show_progress=False)


@pytest.fixture(scope="session")
def trained_folder(trained: Tokenizer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return trained.save(tmp_path_factory.mktemp("trained"))


