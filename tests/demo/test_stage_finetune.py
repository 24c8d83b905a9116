"""The demo's LoRA stage data: the persona answers are what the loss is on (the stage itself
runs, on a copy of the session's SmolLM2, in test_demo_run.py)."""

from __future__ import annotations

from lmstack.data.sft import build_examples
from lmstack.demo.stage_finetune import PERSONA, identity_chats


def test_identity_chats_train_on_the_persona(smollm2):
    _, tokenizer, _ = smollm2
    examples = build_examples(tokenizer, identity_chats(), 256)
    answers = {tokenizer.decode([t for t in e.labels if t >= 0], skip_special_tokens=False)
               for e in examples}
    assert {PERSONA["en"] + "<|im_end|>", PERSONA["zh"] + "<|im_end|>"} <= answers
