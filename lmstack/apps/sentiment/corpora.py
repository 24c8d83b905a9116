"""The two review corpora and one seeded, stratified train/test split shared by every model.

ChnSentiCorp (Tan & Zhang 2008): 7,766 Chinese hotel reviews, `label,review` CSV, 1 = positive.
Movie reviews (Pang & Lee 2004, polarity v2.0): 2,000 English reviews, JSON lines
`{text, label: pos|neg}`. Both live in ../shared/data/classification (see its README).
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from pathlib import Path

LABELS = ("negative", "positive")  # index = class id, for both corpora
SHARED = Path("../shared/data/classification")
FILES = {"chnsenticorp": "ChnSentiCorp_htl_all.csv", "movie_reviews": "movie_reviews.jsonl"}
LANGUAGE = {"chnsenticorp": "zh", "movie_reviews": "en"}


@dataclass
class Corpus:
    name: str
    texts: list[str]
    labels: list[int]  # indices into LABELS

    @property
    def language(self) -> str:
        return LANGUAGE[self.name]

    def subset(self, rows: list[int]) -> Corpus:
        return Corpus(self.name, [self.texts[i] for i in rows], [self.labels[i] for i in rows])


def _read_chnsenticorp(path: Path) -> tuple[list[str], list[int]]:
    texts, labels = [], []
    with path.open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            review = (row.get("review") or "").strip()
            if review and row.get("label") in ("0", "1"):  # a few rows have an empty review
                texts.append(review)
                labels.append(int(row["label"]))
    return texts, labels


def _read_movie_reviews(path: Path) -> tuple[list[str], list[int]]:
    texts, labels = [], []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                record = json.loads(line)
                texts.append(record["text"].strip())
                labels.append({"neg": 0, "pos": 1}[record["label"]])
    return texts, labels


def load_corpus(name: str, path: str | Path | None = None) -> Corpus:
    """One corpus by name, from `path` or from ../shared/data/classification."""
    if name not in FILES:
        raise ValueError(f"unknown corpus {name!r}; use one of {', '.join(FILES)}")
    path = Path(path) if path is not None else SHARED / FILES[name]
    if not path.is_file():
        raise ValueError(f"{path} not found; pass --data with the path to {FILES[name]} "
                         "(it ships in ../shared/data/classification)")
    reader = _read_chnsenticorp if name == "chnsenticorp" else _read_movie_reviews
    try:
        texts, labels = reader(path)
    except (KeyError, ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not a {name} file ({type(e).__name__}: {e})") from None
    if len(set(labels)) < 2:
        raise ValueError(f"{path} holds fewer than two classes; is it the right file?")
    return Corpus(name, texts, labels)


def stratified_split(labels: list[int], test_fraction: float = 0.2,
                     seed: int = 0) -> tuple[list[int], list[int]]:
    """(train rows, test rows): each class shuffled with `seed` and cut at the same fraction,
    so both sides keep the corpus's class balance and every model sees the same test set."""
    rng = random.Random(seed)
    train, test = [], []
    for label in sorted(set(labels)):
        rows = [i for i, y in enumerate(labels) if y == label]
        rng.shuffle(rows)
        cut = round(len(rows) * test_fraction)
        test += rows[:cut]
        train += rows[cut:]
    return sorted(train), sorted(test)


def sample(rows: list[int], n: int | None, seed: int = 0) -> list[int]:
    """At most `n` of `rows`, drawn with `seed` (all of them when n is None)."""
    if n is None or n >= len(rows):
        return rows
    return sorted(random.Random(seed).sample(rows, n))
