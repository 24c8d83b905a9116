"""What the demo's model can and cannot do, in words that follow its measured results.

The yardstick is the corpus's unigram entropy: the loss of a model that knows only how often
each token occurs. A language model is learning context once its loss falls clearly below it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

NEAR_EMPTY_CHARS = 8  # fewer visible characters than this is no text to speak of
LEARNED_ORDER_NATS = 0.3  # below unigram by more than this: it uses context
HEALTHY_NATS = 1.5  # below unigram by this much: phrases and short sentences come out


def unigram_entropy(token_ids: Sequence[int] | np.ndarray) -> float:
    """Cross-entropy (nats/token) of predicting every token from its frequency alone."""
    counts = np.bincount(np.asarray(token_ids, dtype=np.int64))
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def is_near_empty(text: str) -> bool:
    return len("".join(text.split())) < NEAR_EMPTY_CHARS


def judge_pretraining(val_loss: float, unigram: float, samples_new: Sequence[str],
                      tokens_seen: int, tok_per_s: float, minutes: float) -> str:
    """A paragraph on what the trained model does, what more time would buy, and what a
    healthy result looks like. `samples_new` are the generated continuations only."""
    gap = unigram - val_loss
    empty = sum(is_near_empty(s) for s in samples_new)
    if not math.isfinite(val_loss):
        state = "No validation loss was measured, so the model's state is unknown."
    elif gap < LEARNED_ORDER_NATS:
        state = (f"**Undertrained.** Its validation loss ({val_loss:.2f} nats/token) is about "
                 f"that of predicting each token from its frequency alone ({unigram:.2f}): it "
                 "has learned which tokens are common, not how they follow each other.")
    elif gap < HEALTHY_NATS:
        state = (f"**Partly trained.** Its validation loss ({val_loss:.2f}) is {gap:.2f} nats "
                 f"below frequency-only prediction ({unigram:.2f}): it has picked up common "
                 "word sequences, but not yet sentences.")
    else:
        state = (f"**Trained well for its size.** Its validation loss ({val_loss:.2f}) is "
                 f"{gap:.2f} nats below frequency-only prediction ({unigram:.2f}).")
    if empty:
        state += (f" {empty} of {len(samples_new)} samples below are empty or nearly so "
                  f"(under {NEAR_EMPTY_CHARS} visible characters).")
    more = max(10.0, 3 * minutes)
    buys = (f"It saw {tokens_seen:,} tokens; at the measured {tok_per_s:,.0f} tokens/s, "
            f"`lmstack demo --minutes {more:g}` would show it about "
            f"{tok_per_s * more * 60:,.0f}, and the loss keeps falling with more tokens.")
    healthy = (f"A healthy result here: validation loss at least {HEALTHY_NATS:g} nats below "
               f"the frequency-only {unigram:.2f} (under {unigram - HEALTHY_NATS:.2f}, "
               f"perplexity under {math.exp(unigram - HEALTHY_NATS):.0f}), and samples that "
               "read as phrases in the corpus's style, even if they make little sense.")
    return " ".join([state, buys if gap < HEALTHY_NATS else "", healthy]).replace("  ", " ")
