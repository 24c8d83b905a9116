"""The settings each language's model trains with: what `train` uses unless told otherwise and
what benchmarks/sentiment.py measured (README's table), sized for minutes on two CPU cores.

English starts from the real all-MiniLM-L6-v2 and reads whole reviews (the median review has
~700 words, ~900 tokens; the verdict is often at the end) as 256-token chunks, every chunk of a
review each step, one loss per review on the mean of its chunks' logits. Layers 1-4 stay
frozen (their output is computed once, frozen.py), so layers 5-6 and a mean-pooling head train:
all-MiniLM-L6-v2 was trained to embed by the mean of its token vectors, and frozen features
pooled that way already score 0.80 against 0.75 for its [CLS] vector
(benchmarks/sentiment_features.py). How many layers to freeze was chosen on a validation split
carved out of the training reviews (benchmarks/sentiment.py --validation): training layer 5 as
well as layer 6 scored 0.878 there against 0.847, for 1.8× the training time.

Chinese hotel reviews are short (median 84 characters, one token each), so a 96-token head
holds more than half of them whole; the encoder is a small char-BERT pretrained first with
masked LM (zh_encoder.py). Small models take larger learning rates.
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
    pooling: str = "cls"  # what the head reads: the [CLS] vector or the mean of all tokens
    freeze_layers: int = 0  # bottom encoder layers kept frozen, their output cached


RECIPES = {
    "en": Recipe(init="minilm", max_length=256, truncation="all_chunks", epochs=4.0, lr=2e-4,
                 batch_size=16, pooling="mean", freeze_layers=4),
    "zh": Recipe(init="pretrain", max_length=96, truncation="head", epochs=1.0, lr=2e-4,
                 batch_size=32, pretrain_steps=300),
}
