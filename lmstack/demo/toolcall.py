"""SmolLM2 taught to call tools: the one recipe the demo stage and `benchmarks/toolcall.py`
share, the chat template that lets the model see its tools, and the LoRA training run.

SmolLM2's own chat template drops `tools` and cannot write a tool-call turn, so out of the box
the model never even reads the schemas. Following transformers' named templates, the tokenizer
gets a second template, "tool_use" (lmstack's ChatML with tools in the system turn and
<tool_call> blocks, SmolLM2's own special tokens), picked whenever tools are passed; chats
without tools keep SmolLM2's template. The tools are listed as one-line signatures, not JSON
Schemas: with schemas they were ~450 of ~570 tokens per example, so training was mostly spent
re-reading them (and 40 steps reached 20% valid calls); signatures leave ~310. Training data
is rendered through it exactly as the engine renders prompts (lmstack.data.sft), with the loss
on both assistant turns: the call and the answer that quotes the tool's result. The adapter folder also holds this tokenizer, so
whoever loads the adapter (`lmstack agent eval --adapter`) prompts the way it was trained.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmstack.agent.synthetic import TOOLS, make_cases
from lmstack.tokenizer.chat_template import (
    CHATML_TEMPLATE,
    TOOLS_AS_SIGNATURES,
    chatml_template,
)


@dataclass(frozen=True)
class ToolcallRecipe:
    """Everything that decides how well the adapter learns, in one place."""

    train_cases: int = 320        # synthetic conversations, seed 0 (seed 1 is held out)
    zh_share: float = 0.4         # the share asked in Chinese
    r: int = 16                   # LoRA rank, alpha, and the layers it wraps: all linear ones
    alpha: int = 32
    targets: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                "down_proj")
    lr: float = 2e-3
    steps: int = 40               # 40 x 8 = 320 conversations: each seen once
    micro_batch_size: int = 8     # rows per step; a row holds one conversation (~310 tokens)
    max_len: int = 512            # tokens per row
    warmup_steps: int = 4
    precision: str = "auto"       # bf16 where the CPU has native bf16 matmuls (AMX), else fp32


def with_tool_template(tokenizer: Any) -> Any:
    """A copy of `tokenizer` (the original is left alone) whose templates gain "tool_use"."""
    cfg = tokenizer.config
    own = cfg.chat_template if isinstance(cfg.chat_template, dict) else \
        {"default": cfg.chat_template or CHATML_TEMPLATE}
    tool_aware = copy.copy(tokenizer)
    tool_aware.config = dataclasses.replace(cfg, chat_template={
        **own, "tool_use": chatml_template(TOOLS_AS_SIGNATURES)})
    return tool_aware


def tool_chats(n: int, seed: int, zh_share: float) -> list[Any]:
    """n synthetic tool conversations as training chats, each with the tools' schemas."""
    from lmstack.data.chat_records import Chat

    schemas = TOOLS.schemas()
    return [Chat(case.messages(), schemas) for case in make_cases(n, seed, zh_share)]


def train_toolcall(model: Any, tokenizer: Any, recipe: ToolcallRecipe, out: Path,
                   threads: int = 2) -> dict[str, Any]:
    """LoRA-SFT `model` in place on the recipe's chats; the adapter and the tool-aware
    tokenizer go to OUT/adapter. Returns what the report shows (steps, seconds, losses, ...)."""
    from lmstack.adapt import parameter_counts
    from lmstack.adapt.methods import method, prepare
    from lmstack.data.sft import SFTDataset, build_examples
    from lmstack.train.config import OptimizerSection, ScheduleSection, TrainingSection
    from lmstack.train.finetune import FinetuneTrainer, trainer_config
    from lmstack.train.metrics import read_metrics
    from lmstack.train.objectives import SupervisedFineTuning

    prepare("lora", model, {"r": recipe.r, "alpha": recipe.alpha,
                            "target_modules": list(recipe.targets)})
    trainable, total = parameter_counts(model)
    examples = build_examples(tokenizer, tool_chats(recipe.train_cases, 0, recipe.zh_share),
                              recipe.max_len)
    data = SFTDataset(examples, recipe.max_len, tokenizer.pad_token_id or 0, pack_rows=True)
    cfg = trainer_config(
        OptimizerSection(lr=recipe.lr, weight_decay=0.0),
        ScheduleSection(warmup_steps=recipe.warmup_steps, min_lr_ratio=0.1),
        TrainingSection(out_dir=out, max_steps=recipe.steps, log_every=1,
                        micro_batch_size=recipe.micro_batch_size, threads=threads,
                        precision=recipe.precision, eval_every=10**9, save_every=10**9,
                        progress=False))
    trainer = FinetuneTrainer(model, SupervisedFineTuning(), data, cfg, tokenizer=tokenizer,
                              method=method("lora"), base_model="SmolLM2-135M-Instruct")
    started = time.perf_counter()
    summary = trainer.fit()  # saves the PEFT adapter to OUT/adapter
    seconds = time.perf_counter() - started
    tokenizer.save(out / "adapter")  # the prompt format it learned travels with it
    losses = [r["loss"] for r in read_metrics(trainer.log.path) if "loss" in r]
    return {"steps": summary["step"], "seconds": seconds, "losses": losses,
            "examples": len(examples), "rows": len(data), "tokens": data.tokens(),
            "trainable": trainable, "total": total, "metrics": trainer.log.path}
