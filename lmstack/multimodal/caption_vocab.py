"""The captions' tokenizer: whole English words and single Chinese characters, as a BERT
WordPiece vocabulary.

The captions and questions come from a closed set of templates (lmstack/multimodal/shapes.py),
so a learned subword vocabulary would only relearn those words. BERT's pre-tokeniser already
puts every CJK character on its own and splits English at spaces and punctuation, so a
vocab.txt listing the ~70 words and characters of the templates gives one token per English
word and per Chinese character, and lmstack's Tokenizer (or transformers' BertTokenizer) loads
it like any BERT's. [CLS] starts a text and [SEP] ends it: the CLIP text tower pools at [SEP].
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from lmstack.fileio import atomic_write_text
from lmstack.multimodal.shapes import ALL_SHAPES, digit_caption
from lmstack.tokenizer.tokenizer import Tokenizer

SPECIALS = {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]",
            "sep_token": "[SEP]", "mask_token": "[MASK]"}
# What the captioner is asked when it should describe the image rather than answer a question.
DESCRIBE = {"en": "describe the image", "zh": "描述这张图片"}
_CJK = r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]"


def corpus() -> list[str]:
    """Every caption, question, answer and prompt the templates can produce, EN and ZH."""
    texts = [*DESCRIBE.values()]
    for lang in ("en", "zh"):
        texts += [digit_caption(d, lang) for d in range(10)]
        for s in ALL_SHAPES:
            texts += [s.caption(lang), *(f"{q} {a}" for q, a in s.questions(lang))]
    return texts


def build_caption_tokenizer(folder: str | Path) -> Tokenizer:
    """Write vocab.txt + tokenizer_config.json for the corpus' words and characters; load it."""
    words = sorted({w for t in corpus() for w in re.findall(r"[a-z]+|\S", t.lower())})
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "vocab.txt", "\n".join([*SPECIALS.values(), *words]) + "\n")
    atomic_write_text(folder / "tokenizer_config.json", json.dumps(
        {"tokenizer_class": "BertTokenizer", "do_lower_case": True, "model_max_length": 32,
         **SPECIALS}, indent=2))
    return Tokenizer.from_folder(folder)


def join_text(text: str) -> str:
    """Decoded WordPiece puts spaces between Chinese characters; written Chinese has none."""
    return re.sub(rf"(?<={_CJK}) (?={_CJK})", "", text)
