"""Confidence intervals for accuracies measured on small sets.

Follows Wilson (1927), "Probable inference, the law of succession, and statistical inference":
the score interval, which stays inside [0, 1] and behaves at 0 or n successes.
"""

from __future__ import annotations

import math


def wilson_interval(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% (z = 1.96) Wilson score interval for a proportion successes / n."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)
