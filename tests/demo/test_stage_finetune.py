"""The demo's LoRA stage on the session's SmolLM2, a couple of steps: it trains a copy (the
shared model stays as it was), saves a PEFT adapter, and reports before/after answers."""

from __future__ import annotations

import torch
from rich.console import Console

from lmstack.data.sft import build_examples
from lmstack.demo import DemoRun
from lmstack.demo.stage_finetune import PERSONA, identity_chats, stage_finetune


def test_identity_chats_train_on_the_persona(smollm2):
    _, tokenizer, _ = smollm2
    examples = build_examples(tokenizer, identity_chats(), 256)
    answers = {tokenizer.decode([t for t in e.labels if t >= 0], skip_special_tokens=False)
               for e in examples}
    assert {PERSONA["en"] + "<|im_end|>", PERSONA["zh"] + "<|im_end|>"} <= answers


def test_stage_trains_a_copy_and_reports_before_and_after(smollm2, tmp_path):
    model = smollm2[0]
    q_before = model.model.layers[0].self_attn.q_proj.weight.clone()
    run = DemoRun(tmp_path, "stdlib", 1.0, Console(quiet=True),
                  options={"finetune": {"model": smollm2, "steps": 2, "r": 2, "alpha": 4,
                                        "max_tokens": 4, "micro_batch_size": 1}})
    stage_finetune(run)
    section = run.sections[0]
    assert section.startswith("## Fine-tuning with LoRA")
    assert section.count("before:") == 3 and section.count("after:") == 3
    assert "2 AdamW steps" in section and (tmp_path / "finetune_loss.png").is_file()
    assert (tmp_path / "finetune" / "adapter" / "adapter_config.json").is_file()
    shared = model.model.layers[0].self_attn.q_proj
    assert type(shared) is torch.nn.Linear and torch.equal(shared.weight, q_before)
