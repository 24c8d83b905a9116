"""Few-shot templates render the harness's layout; example selection is fixed by its seed."""

from __future__ import annotations

import pytest

from lmstack.prompting import Example, FewShotTemplate, select_examples

POOL = [Example(f"What is {i} + {i}?", str(2 * i)) for i in range(10)]


def test_template_renders_shots_then_the_question():
    t = FewShotTemplate()
    prompt = t.render("What is 5 + 5?", POOL[:2])
    assert prompt == ("Question: What is 0 + 0?\nAnswer: 0\n\nQuestion: What is 1 + 1?\nAnswer: 2"
                      "\n\nQuestion: What is 5 + 5?\nAnswer:")
    t = FewShotTemplate("Q: {question}\nA:", " ", "\n", instruction="Add.")
    assert t.render("x?", POOL[:1]) == "Add.\nQ: What is 0 + 0?\nA: 0\nQ: x?\nA:"


def test_fixed_random_and_seeded():
    assert select_examples(POOL, 3, "fixed") == POOL[:3]
    a = select_examples(POOL, 3, "random", seed=1, index=4)
    assert a == select_examples(POOL, 3, "random", seed=1, index=4)
    assert len(set(a)) == 3
    # Another seed, or another question under the same seed, draws other shots.
    draws = {tuple(select_examples(POOL, 3, "random", seed=s, index=4)) for s in range(2, 8)}
    assert len(draws) > 1
    assert a != select_examples(POOL, 3, "random", seed=1, index=5)
    assert POOL[4] not in select_examples(POOL, 9, "random", exclude=POOL[4].question)
    assert select_examples(POOL, 0) == []


def test_nearest_by_embedding():
    def embed(texts):  # a toy embedder: the first digit as a direction on a circle
        import math
        return [[math.cos(int(t.split()[2])), math.sin(int(t.split()[2]))] for t in texts]

    # 3 itself is excluded; cosine to angle 3 is cos(i - 3): i = 9 gives cos 6 = 0.960, the
    # largest (next: i = 2 and 4, cos 1 = 0.540).
    assert select_examples(POOL, 1, "nearest", exclude="What is 3 + 3?", embed=embed) == [POOL[9]]


def test_selection_errors():
    with pytest.raises(ValueError, match="example pool has 10"):
        select_examples(POOL, 11)
    with pytest.raises(ValueError, match="unknown selection"):
        select_examples(POOL, 1, "best")
    with pytest.raises(ValueError, match="embed"):
        select_examples(POOL, 1, "nearest")
