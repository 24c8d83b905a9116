"""Answer-level metrics for extractive QA: exact match and token F1 after normalisation.

The SQuAD v1.1 evaluation script's recipe (Rajpurkar et al., 2016): lower-case, drop
punctuation and the articles a/an/the, fold whitespace; F1 over the bag of tokens. Chinese text
counts characters as tokens, as the CMRC 2018 evaluation does.
"""

from __future__ import annotations

import re
import string
from collections import Counter

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_CJK = re.compile(r"([\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff])")
_PUNCT = set(string.punctuation) | set("，。！？；：、（）《》“”‘’【】")


def normalize_answer(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT)
    return " ".join(_ARTICLES.sub(" ", text).split())


def answer_tokens(text: str) -> list[str]:
    """Normalised words; every Chinese character is a token of its own."""
    return _CJK.sub(r" \1 ", normalize_answer(text)).split()


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    pred, ref = answer_tokens(prediction), answer_tokens(gold)
    common = sum((Counter(pred) & Counter(ref)).values())
    if not common:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def contains_answer(text: str, gold: str) -> bool:
    """Whether the normalised gold answer appears inside the normalised `text` (a lenient
    match for generated sentences that embed a short answer)."""
    return normalize_answer(gold) in normalize_answer(text)
