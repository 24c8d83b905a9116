"""Fixtures for the data tests: a byte-level BPE tokenizer trained on English and Chinese."""

from __future__ import annotations

import pytest

# Public-domain Tang poems (Li Bai, Meng Haoran, Wang Zhihuan), enough to give BPE some merges.
CHINESE = """静夜思
床前明月光，疑是地上霜。举头望明月，低头思故乡。

春晓
春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。

登鹳雀楼
白日依山尽，黄河入海流。欲穷千里目，更上一层楼。
"""


def english_text(max_chars: int = 60_000) -> str:
    from pydoc_data import topics

    return "\n\n".join(topics.topics[k] for k in sorted(topics.topics))[:max_chars]


@pytest.fixture(scope="session")
def tokenizer(tmp_path_factory):
    from lmstack.tokenizer import train_bpe

    folder = tmp_path_factory.mktemp("tok")
    path = folder / "train.txt"
    path.write_text(english_text() + "\n\n" + CHINESE * 20, encoding="utf-8")
    return train_bpe([path], vocab_size=512, show_progress=False)
