"""Chain-of-thought prompting and reading the final answer out of free-form model text.

Follows Kojima et al. 2022 ("Let's think step by step") for the trigger and the answer-cleansing
step of lm-evaluation-harness's GSM8K filters ("The answer is N", "#### N", else the last number).
"""

from __future__ import annotations

import re

COT_TRIGGER = "Let's think step by step."
ANSWER_FORMAT = "End with: The answer is <number>."

_NUMBER = r"-?\$?\d[\d,]*(?:\.\d+)?"
# Explicit final-answer phrases, most specific first; each captures the number after it.
_FINAL = [
    rf"####\s*({_NUMBER})",
    rf"\\boxed\{{\s*({_NUMBER})\s*\}}",
    rf"(?:answer|答案)\s*(?:is|:|=|是|：)\s*[:：\s]*\**\s*({_NUMBER})",
    rf"(?:total|result|altogether|in all)\s*(?:is|:|=|of)\s*\**\s*({_NUMBER})",
]


def _clean(number: str) -> str:
    """'$1,200.00' -> '1200'; '7.50' -> '7.5'; numbers compare as text after this."""
    text = number.replace(",", "").replace("$", "").rstrip(".")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def extract_number(text: str) -> str | None:
    """The final numeric answer in a completion: an explicit "answer is N" / "#### N" /
    boxed{N} (the last one if the model repeats itself), else the last number written."""
    for pattern in _FINAL:
        found = re.findall(pattern, text, flags=re.IGNORECASE)
        if found:
            return _clean(found[-1])
    numbers = re.findall(_NUMBER, text)
    return _clean(numbers[-1]) if numbers else None


def extract_choice(text: str, choices: list[str] | None = None, n_choices: int = 4) -> int | None:
    """The option index (0 = A) a completion picks: "The answer is (B)", "Answer: B", "B.",
    "B) ...", a lone letter; failing those, the one option whose text it quotes."""
    letters = "ABCDEFGHIJ"[:n_choices if choices is None else len(choices)]
    patterns = [
        # "answer" in any case, the letter in capitals: "the answer is a mask" picks no A.
        rf"(?i:answer|答案)\s*(?i:is|是|:|：)?\s*[:：\s]*\(?\**([{letters}])\b",
        rf"(?:^|\n)\s*\(?([{letters}])[\).:](?:\s|$)",
        rf"^\s*\(?([{letters}])\)?\s*$",
        rf"\(([{letters}])\)",
        rf"^\s*([{letters}])\b",
    ]
    for pattern in patterns:
        found = re.search(pattern, text)
        if found:
            return letters.index(found.group(1))
    if choices:
        quoted = [i for i, c in enumerate(choices) if c.strip() and c.strip().lower()
                  in text.lower()]
        if len(quoted) == 1:
            return quoted[0]
    return None
