"""Speculative decoding by prompt lookup: guess the next tokens from the text so far, check them
all in one forward pass, keep the ones the model agrees with.

Follows prompt lookup decoding (Saxena 2023) as vLLM's "ngram" proposer does it: find the most
recent earlier place where the last few tokens occurred and propose what followed them there.
Answers that quote their prompt (RAG, summaries, code edits, extraction) repeat long runs.
At batch 1 a decode step is bound by reading the weights, so checking 1 + k tokens costs little
more than decoding one; every accepted guess is a step saved. Only greedy requests speculate:
a guess is kept exactly when it is the argmax the model would have produced, so outputs are
the same tokens with or without speculation (up to float ties).
"""

from __future__ import annotations

from torch import Tensor


def propose_ngram(tokens: list[int], k: int, max_n: int = 3, min_n: int = 1) -> list[int]:
    """Up to k tokens that followed the latest earlier occurrence of the last n tokens,
    trying the longest pattern (max_n) first; [] when nothing repeats."""
    for n in range(min(max_n, len(tokens) - 1), min_n - 1, -1):
        pattern = tokens[-n:]
        # Right to left: the most recent occurrence is the likeliest to continue the same way.
        for start in range(len(tokens) - n - 1, -1, -1):
            if tokens[start:start + n] == pattern:
                return tokens[start + n:start + n + k]
    return []


def verify_greedy(drafts: list[int], logits: Tensor) -> list[int]:
    """The tokens to keep: drafts while they match the model's argmax, then one of its own.

    logits [len(drafts) + 1, vocab] are the model's next-token logits after the last real
    token and after each draft; the last row gives a free token when every draft is kept.
    """
    best = logits.argmax(-1).tolist()
    kept = 0
    while kept < len(drafts) and drafts[kept] == best[kept]:
        kept += 1
    return drafts[:kept] + [best[kept]]


def can_speculate(params) -> bool:
    """Plain greedy only: sampling, penalties (which depend on each kept token), logprobs or
    a guide's mask would make the check more than an argmax comparison."""
    return (params.greedy and not params.needs_penalties and params.logprobs is None
            and params.guided_json is None)
