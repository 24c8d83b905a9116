"""Synthetic grade-school arithmetic word problems with gold answers, generated in code.

Follows the shape of GSM8K (Cobbe et al. 2021) at a small model's scale: two or three steps of
+, -, x, / on small whole numbers, so every gold answer is an exact integer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from lmstack.prompting.cot import ANSWER_FORMAT, COT_TRIGGER

NAMES = ["Tom", "Mia", "Ali", "Sara", "Ken", "Lena", "Omar", "Zoe", "Raj", "Ana"]
ITEMS = ["apples", "pencils", "stickers", "marbles", "cookies", "books", "cards", "shells"]


@dataclass(frozen=True)
class WordProblem:
    question: str
    answer: int


def _one(rng: random.Random) -> WordProblem:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    a, b, c = rng.randint(2, 9), rng.randint(2, 9), rng.randint(2, 20)
    kind = rng.randrange(4)
    if kind == 0:
        return WordProblem(f"{name} has {c} {item}. {name} buys {a} packs with {b} {item} in "
                           f"each pack. How many {item} does {name} have now?", c + a * b)
    if kind == 1:
        total = a * b + c
        return WordProblem(f"{name} had {total} {item} and gave {c} of them away. {name} shares "
                           f"the rest equally among {a} friends. How many {item} does each "
                           "friend get?", b)
    if kind == 2:
        return WordProblem(f"A box holds {a} rows of {b} {item}. {name} fills {c} boxes and "
                           f"then eats {a} {item}. How many {item} are left?", a * b * c - a)
    price = rng.randint(2, 9)
    return WordProblem(f"{name} buys {a} {item} at {price} dollars each and pays with a "
                       f"{a * price + c} dollar note. How much change does {name} get, in "
                       "dollars?", c)


def word_problems(n: int, seed: int = 0) -> list[WordProblem]:
    """n problems, the same ones for the same seed."""
    rng = random.Random(seed)
    return [_one(rng) for _ in range(n)]


def direct_prompt(p: WordProblem) -> str:
    return f"{p.question}\nReply with the final number only."


def cot_prompt(p: WordProblem) -> str:
    return f"{p.question}\n{COT_TRIGGER} {ANSWER_FORMAT}"


def is_correct(extracted: str | None, p: WordProblem) -> bool:
    return extracted is not None and extracted == str(p.answer)
