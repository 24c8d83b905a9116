"""A small Chinese BERT made here: no pretrained Chinese encoder ships offline, so the app
builds a character vocabulary from its own text and pretrains with masked LM for a few minutes.

Characters as tokens follow Google's Chinese BERT (every CJK character is its own token, the
BertNormalizer puts spaces around them) and Cui et al. 2019 on Chinese pretraining; the masked
LM objective and its 80/10/10 corruption are lmstack's (data/mlm.py, train/objectives.py).
"""

from __future__ import annotations

import json
import random
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from lmstack.apps.sentiment.finetune import train_steps
from lmstack.data.mlm import MLMSequences, SpecialIds
from lmstack.models.bert import BertConfig, BertForMaskedLM
from lmstack.tokenizer import Tokenizer
from lmstack.train.objectives import MaskedLM

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Small enough to pretrain in minutes on two cores (1.3M weights besides the embeddings).
SMALL = {"hidden_size": 192, "num_hidden_layers": 3, "num_attention_heads": 3,
         "intermediate_size": 768, "max_position_embeddings": 512}


def char_vocab(texts: Sequence[str], size: int = 6000, min_count: int = 2) -> list[str]:
    """Specials, then the most frequent characters (lower-cased, as the tokenizer sees them).

    A character outside the CJK blocks can also continue a word ("good" -> g ##o ##o ##d), so
    it gets a `##` twin; CJK characters always stand alone.
    """
    counts = Counter(ch for text in texts for ch in text.lower() if not ch.isspace())
    chars = [ch for ch, n in counts.most_common() if n >= min_count][:size]
    vocab = SPECIALS + chars
    vocab += [f"##{ch}" for ch in chars if not _is_cjk(ch)]
    return vocab


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF


def char_tokenizer(vocab: Sequence[str]) -> Tokenizer:
    """A BERT WordPiece tokenizer over `vocab`, built the way a vocab.txt folder is read."""
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
        config = {"tokenizer_class": "BertTokenizer", "do_lower_case": True,
                  "tokenize_chinese_chars": True, "model_max_length": 512,
                  "unk_token": "[UNK]", "cls_token": "[CLS]", "sep_token": "[SEP]",
                  "pad_token": "[PAD]", "mask_token": "[MASK]"}
        (Path(folder) / "tokenizer_config.json").write_text(json.dumps(config),
                                                             encoding="utf-8")
        return Tokenizer.from_folder(folder)


def pretrain_chinese_bert(texts: Sequence[str], *, steps: int = 300, seq_len: int = 64,
                          batch_size: int = 32, lr: float = 5e-4, seed: int = 0,
                          model_config: dict | None = None,
                          log: Callable[[str], None] | None = None
                          ) -> tuple[BertForMaskedLM, Tokenizer, list[float]]:
    """(masked-LM model, its tokenizer, loss per step) after `steps` steps on `texts`.

    The texts are tokenized, joined into one stream and cut into [CLS] window [SEP] rows;
    each draw masks 15% of a row afresh (RoBERTa's dynamic masking).
    """
    tokenizer = char_tokenizer(char_vocab(texts))
    stream = np.fromiter((i for ids in tokenizer.encode_batch(list(texts),
                                                              add_special_tokens=False)
                          for i in ids), dtype=np.int64)
    special = SpecialIds.from_tokenizer(tokenizer)
    data = MLMSequences(stream, seq_len, special, seed=seed)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tokenizer), pad_token_id=special.pad,
                        **(model_config or SMALL))
    model = BertForMaskedLM(config)
    objective, rng = MaskedLM(), random.Random(seed)

    def loss_of_step(step: int) -> torch.Tensor:
        rows = [rng.randrange(len(data)) for _ in range(batch_size)]
        batch = data.batch(rows, [step * batch_size + i for i in range(batch_size)])
        total, count = objective(model, batch)["lm"]
        return total / count.clamp(min=1)

    losses = train_steps(model, loss_of_step, steps, lr, warmup=max(1, steps // 20),
                         log=log)
    return model, tokenizer, losses
