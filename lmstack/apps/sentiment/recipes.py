"""The settings each language's model trains with: what `train` uses unless told otherwise and
what benchmarks/sentiment.py measured (README's table), sized for minutes on two CPU cores.

English starts from the real all-MiniLM-L6-v2 and reads whole reviews in 128-token chunks
(the median review has ~700 words, ~900 tokens; the verdict is often at the end). Chinese
hotel reviews are short (median 84 characters, one token each), so a 96-token head holds more
than half of them whole; the encoder is a small char-BERT pretrained first with masked LM
(zh_encoder.py). Small models take larger learning rates.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    init: str
    max_length: int
    truncation: str
    epochs: float
    lr: float
    batch_size: int
    pretrain_steps: int = 0  # masked-LM steps before fine-tuning (init "pretrain")


RECIPES = {
    "en": Recipe(init="minilm", max_length=128, truncation="chunks", epochs=1.5, lr=1e-4,
                 batch_size=16),
    "zh": Recipe(init="pretrain", max_length=96, truncation="head", epochs=1.0, lr=2e-4,
                 batch_size=32, pretrain_steps=300),
}
