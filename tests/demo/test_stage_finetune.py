"""The demo's LoRA stage data and verdicts: the persona and the replayed answers are what the
loss is on, and the report's findings follow the answers (the stage itself runs, on a copy of
the session's SmolLM2, in test_demo_run.py)."""

from __future__ import annotations

from lmstack.data.sft import build_examples
from lmstack.demo.stage_finetune import PERSONA, identity_chats, judge


def test_identity_chats_train_on_the_persona_and_the_replay(smollm2):
    _, tokenizer, _ = smollm2
    replay = [("What do bees make?", "Bees make honey.")]
    examples = build_examples(tokenizer, identity_chats(replay), 256)
    answers = {tokenizer.decode([t for t in e.labels if t >= 0], skip_special_tokens=False)
               for e in examples}
    assert {PERSONA["en"] + "<|im_end|>", PERSONA["zh"] + "<|im_end|>",
            "Bees make honey.<|im_end|>"} <= answers


def test_judge_follows_the_answers():
    persona = [PERSONA["en"], PERSONA["zh"]]
    before = ["I am an AI.", "我是一个AI。", "The capital of France is Paris.",
              "The Pacific Ocean is the largest."]
    verdict, other = judge(before, persona + before[2:])
    assert verdict.startswith("Both unseen") and "kept the adapter" in other
    assert "and the right one" in other
    verdict, other = judge(before, ["I am an AI.", PERSONA["zh"], "Lyon.", before[3]])
    assert verdict.startswith("The persona did not show")
    assert other.startswith("What is the capital of France?: right before training, wrong")
    _, other = judge(before, persona + [PERSONA["en"], before[3]])
    assert other.startswith("A general question now gets the persona")
    _, other = judge(["", "", "Lyon.", "Atlantic."], persona + ["Lyon.", "Atlantic."])
    assert "kept the adapter" in other and "the right one" not in other
