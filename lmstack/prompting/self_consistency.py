"""Self-consistency: sample several reasoning paths and take the most frequent final answer.

Follows Wang et al. 2022, "Self-Consistency Improves Chain of Thought Reasoning" (majority vote
over extracted answers; paths whose answer cannot be read do not vote).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence


def majority_vote(answers: Sequence[str | None]) -> tuple[str | None, int]:
    """(most frequent answer, its count); None answers abstain; a tie goes to the answer seen
    first, so the vote is deterministic for a fixed list of samples."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return None, 0
    best = max(counts.values())
    winner = next(a for a in answers if a is not None and counts[a] == best)
    return winner, best


def self_consistency(
    sample: Callable[[str, int], list[str]],
    prompt: str,
    k: int,
    extract: Callable[[str], str | None],
) -> dict:
    """Draw k completions of `prompt` with `sample(prompt, k)` (temperature > 0), extract each
    one's answer and vote. Returns the answer, its votes, and every path with its answer."""
    if k < 1:
        raise ValueError(f"self-consistency needs k >= 1 samples, got {k}")
    texts = sample(prompt, k)
    answers = [extract(t) for t in texts]
    answer, votes = majority_vote(answers)
    return {"answer": answer, "votes": votes, "k": k, "paths": texts, "answers": answers}
