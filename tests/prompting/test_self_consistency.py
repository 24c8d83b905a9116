"""Self-consistency's vote on fixed samples equals a hand count."""

from __future__ import annotations

import pytest

from lmstack.prompting import extract_number, majority_vote, self_consistency


def test_vote_equals_a_hand_count():
    # 12: three votes, 15: two, 7: one; one path gave no number and abstains.
    answers = ["12", "15", None, "12", "7", "15", "12"]
    assert majority_vote(answers) == ("12", 3)
    assert majority_vote(["4", "9", "9", "4"]) == ("4", 2)  # tie: the first seen wins
    assert majority_vote([None, None]) == (None, 0)


def test_self_consistency_over_fixed_paths():
    paths = ["3 + 4 = 7, so the answer is 7.", "The answer is 8.", "Adding: 7",
             "I think 9.", "Total: 7"]
    out = self_consistency(lambda prompt, k: paths[:k], "q", 5, extract_number)
    assert out["answers"] == ["7", "8", "7", "9", "7"]
    assert (out["answer"], out["votes"]) == ("7", 3)
    with pytest.raises(ValueError, match="k >= 1"):
        self_consistency(lambda p, k: [], "q", 0, extract_number)
