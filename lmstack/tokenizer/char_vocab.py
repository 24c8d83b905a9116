"""A character vocabulary for a BERT WordPiece tokenizer, counted from a corpus.

Chinese BERTs (Devlin et al.'s bert-base-chinese) are close to this already: BERT's
pre-tokeniser puts every CJK character on its own, so a vocabulary of the frequent characters
(plus Latin letters and digits, which WordPiece then spells out one by one) covers Chinese text
with no word segmentation and a vocabulary of a few thousand. Written as a vocab.txt folder, so
`Tokenizer.from_folder` loads it as it would any BERT's.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from lmstack.fileio import atomic_write_text
from lmstack.tokenizer.tokenizer import Tokenizer

SPECIALS = {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]",
            "sep_token": "[SEP]", "mask_token": "[MASK]"}


def train_char_vocab(texts: Iterable[str], folder: str | Path, min_count: int = 1,
                     max_size: int | None = None) -> Tokenizer:
    """Every character seen at least `min_count` times (the most frequent `max_size`), lower
    cased as BERT's normaliser will see them; whitespace is never a token."""
    counts = Counter(ch for text in texts for ch in text.lower() if not ch.isspace())
    chars = [c for c, n in counts.most_common(max_size) if n >= min_count]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "vocab.txt", "\n".join([*SPECIALS.values(), *sorted(chars)]) + "\n")
    atomic_write_text(folder / "tokenizer_config.json",
                      json.dumps({"tokenizer_class": "BertTokenizer", "do_lower_case": True,
                                  "model_max_length": 512, **SPECIALS}, indent=2))
    return Tokenizer.from_folder(folder)
