"""Multiple choice for chat models by generation: show lettered options, read the letter back.

Follows the MMLU/C-Eval generative setup ("A. ... B. ... Answer:") with the answer letter read
by `prompting.cot.extract_choice`; a reply no letter can be read from counts as wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from lmstack.evals.multiple_choice import MCQuestion, summarize
from lmstack.prompting.cot import extract_choice
from lmstack.prompting.fewshot import Example, FewShotTemplate, select_examples

LETTERS = "ABCDEFGHIJ"
LETTER_TEMPLATE = FewShotTemplate("{question}\nAnswer:", " ", "\n\n",
                                  "Answer each question with the letter of the correct option.")


def lettered(q: MCQuestion) -> str:
    """The question followed by its options, one per line: "A. ...", "B. ..."."""
    return q.question + "".join(f"\n{LETTERS[i]}. {c}" for i, c in enumerate(q.choices))


def evaluate_generative(
    generate: Callable[[list[str]], list[str]],
    questions: Sequence[MCQuestion],
    shots: int = 0,
    pool: Sequence[MCQuestion] = (),
    seed: int = 1234,
) -> dict[str, Any]:
    """`generate(prompts) -> replies` (greedy, a few tokens); acc is the share of replies whose
    extracted letter is the gold one. Few-shot examples answer with their letter."""
    pool = list(pool or questions)
    examples = [Example(lettered(p), LETTERS[p.gold]) for p in pool]
    prompts = [LETTER_TEMPLATE.render(lettered(q), select_examples(
        examples, shots, "random", seed, i, exclude=lettered(q))) for i, q in enumerate(questions)]
    replies = generate(prompts)
    records = []
    for i, (q, reply) in enumerate(zip(questions, replies, strict=True)):
        pred = extract_choice(reply, q.choices)
        records.append({"index": i, "question": q.question, "gold": q.gold, "reply": reply,
                        "pred": pred, "acc": float(pred == q.gold)})
    unread = sum(r["pred"] is None for r in records)
    return {**summarize(records, shots=shots, seed=seed, unreadable=unread), "records": records}
