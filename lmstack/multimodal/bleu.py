"""Corpus BLEU (Papineni et al. 2002), written out: clipped n-gram precisions, their geometric
mean, and a brevity penalty; one reference per hypothesis, on token lists.

Counts are summed over the whole corpus before dividing (as sacrebleu and NLTK's corpus_bleu),
so short sentences without 4-grams still count towards the lower orders. With no n-grams of
some order in the whole corpus, or none matching, the score is 0 (no smoothing).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence


def ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def corpus_bleu(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
                max_n: int = 4) -> float:
    """BLEU in [0, 1] of tokenised hypotheses against one tokenised reference each."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    matched, total = [0] * max_n, [0] * max_n
    for hyp, ref in zip(hypotheses, references):
        for n in range(1, max_n + 1):
            h, r = ngrams(hyp, n), ngrams(ref, n)
            matched[n - 1] += sum(min(c, r[g]) for g, c in h.items())  # clipped counts
            total[n - 1] += sum(h.values())
    if min(matched) == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matched, total)) / max_n
    hyp_len = sum(len(h) for h in hypotheses)
    ref_len = sum(len(r) for r in references)
    brevity = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / max(hyp_len, 1))
    return brevity * math.exp(log_precision)
