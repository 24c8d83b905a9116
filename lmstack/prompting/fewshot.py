"""Few-shot prompts: a template for one solved example, and which examples to show.

Follows lm-evaluation-harness's layout (examples joined by "\\n\\n", the answer after a target
delimiter " ") and its seeded per-question random sampling (Brown et al. 2020, "in-context").
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    """A solved example: the question text and the answer shown after it."""

    question: str
    answer: str


@dataclass(frozen=True)
class FewShotTemplate:
    """`question_format` renders a question (with `{question}`); a shot appends
    `answer_delimiter + answer`; shots and the final question are joined by `shot_delimiter`."""

    question_format: str = "Question: {question}\nAnswer:"
    answer_delimiter: str = " "
    shot_delimiter: str = "\n\n"
    instruction: str = ""

    def question(self, question: str) -> str:
        return self.question_format.format(question=question)

    def shot(self, example: Example) -> str:
        return self.question(example.question) + self.answer_delimiter + example.answer

    def render(self, question: str, shots: Sequence[Example] = ()) -> str:
        """The whole prompt: optional instruction, the shots, then the unanswered question."""
        parts = [self.shot(e) for e in shots] + [self.question(question)]
        head = self.instruction + self.shot_delimiter if self.instruction else ""
        return head + self.shot_delimiter.join(parts)


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def select_examples(
    pool: Sequence[Example],
    k: int,
    strategy: str = "random",
    seed: int = 1234,
    index: int = 0,
    exclude: str | None = None,
    embed: Callable[[list[str]], Sequence[Sequence[float]]] | None = None,
) -> list[Example]:
    """k examples from `pool` for the question numbered `index` (text `exclude`, never shown
    as its own example).

    fixed: the first k; random: a sample drawn from a generator seeded by (seed, index), so a
    question gets the same shots on every run and different questions get different ones (the
    harness's default seed is 1234); nearest: the k most cosine-similar by `embed`."""
    if k < 0:
        raise ValueError(f"the number of shots must be >= 0, got {k}")
    candidates = [e for e in pool if e.question != exclude]
    if k > len(candidates):
        raise ValueError(f"{k} shots asked for but the example pool has {len(candidates)}")
    if k == 0:
        return []
    if strategy == "fixed":
        return candidates[:k]
    if strategy == "random":
        return random.Random(seed * 1_000_003 + index).sample(candidates, k)
    if strategy == "nearest":
        if embed is None or exclude is None:
            raise ValueError("nearest selection needs an embed function and the question text")
        vectors = embed([exclude] + [e.question for e in candidates])
        sims = [_cosine(vectors[0], v) for v in vectors[1:]]
        order = sorted(range(len(candidates)), key=lambda i: -sims[i])
        return [candidates[i] for i in order[:k]]
    raise ValueError(f"unknown selection {strategy!r}; use fixed, random or nearest")
