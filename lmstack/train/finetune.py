"""From a FinetuneConfig to a trained adapter or model: load the model, ready it with the
method (full, lora, ...), build the objective's data, train with the one Trainer, save.

Follows LLaMA-Factory's stages (sft, dpo, orpo; here also distill) over a single training
loop; `lmstack finetune` is a thin shell over `finetune_from_config`.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from torch import nn

from lmstack.adapt.methods import Method, method, prepare
from lmstack.data.chat_records import read_records, to_chat, to_preference
from lmstack.data.preference import PreferenceDataset
from lmstack.data.sft import SFTDataset, build_examples
from lmstack.train.config import (
    ConfigError,
    DataSection,
    OptimizerSection,
    ScheduleSection,
    TrainConfig,
    TrainingSection,
)
from lmstack.train.distill import Distillation, layer_subset_student
from lmstack.train.finetune_config import FinetuneConfig
from lmstack.train.objectives import Objective, SupervisedFineTuning
from lmstack.train.preference import DPO, ORPO, precompute_reference
from lmstack.train.trainer import Trainer


class FinetuneTrainer(Trainer):
    """The Trainer, saving what the method trains (a PEFT adapter folder for LoRA, prompt or
    prefix tuning, a whole HF folder for full fine-tuning) to OUT/adapter or OUT/model instead
    of resumable checkpoints."""

    def __init__(self, *args: Any, method: Method, base_model: str, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.method, self.base_model = method, base_model

    def save_checkpoint(self) -> Path | None:
        if not self.dist.is_main:
            return None
        folder = self.out_dir / self.method.saves
        self.method.save(self.raw_model, folder, self.base_model)
        if self.method.saves == "model" and self.tokenizer is not None:
            self.tokenizer.save(folder)
        return folder


def trainer_config(optimizer: OptimizerSection, schedule: ScheduleSection,
                   training: TrainingSection) -> TrainConfig:
    """The Trainer's config for a fine-tuning run: its own model and data sections go unused
    (the model comes ready, the data as datasets)."""
    return TrainConfig(data=DataSection(files=[]), optimizer=optimizer, schedule=schedule,
                       training=training)


def split(items: list, val_fraction: float) -> tuple[list, list]:
    """(train, val): the last val_fraction of the items held out, at least one if any."""
    n_val = round(len(items) * val_fraction) if val_fraction else 0
    n_val = min(max(n_val, 1 if val_fraction else 0), len(items) - 1)
    return items[:len(items) - n_val], items[len(items) - n_val:]


def read_all(cfg: FinetuneConfig, convert) -> list:
    out = []
    for path in cfg.data.files:
        records = read_records(path)[:cfg.data.limit]
        out += [convert(r, f"{path} record {i}") for i, r in enumerate(records)]
    return out


def build_data(cfg: FinetuneConfig, tokenizer: Any) -> tuple[Any, Any]:
    """(train, val) datasets for the objective; val is None when val_fraction is 0."""
    d, pad = cfg.data, tokenizer.pad_token_id or 0
    if cfg.objective in ("dpo", "orpo"):
        train, val = split(read_all(cfg, to_preference), d.val_fraction)
        return (PreferenceDataset(tokenizer, train, d.max_len, pad),
                PreferenceDataset(tokenizer, val, d.max_len, pad) if val else None)
    train, val = split(read_all(cfg, to_chat), d.val_fraction)
    sets = [SFTDataset(build_examples(tokenizer, chats, d.max_len), d.max_len, pad, d.pack)
            if chats else None for chats in (train, val)]
    return sets[0], sets[1]


def build_objective(cfg: FinetuneConfig, model: nn.Module, train: Any, val: Any,
                    reference: nn.Module | None, teacher: nn.Module | None) -> Objective:
    if cfg.objective == "dpo":
        if reference is None:  # the model before training is the reference: score once
            for data in (train, val):
                if data is not None:
                    precompute_reference(model, data, cfg.training.micro_batch_size)
        return DPO(cfg.dpo.beta, reference)
    if cfg.objective == "orpo":
        return ORPO(cfg.orpo.beta)
    if cfg.objective == "distill":
        return Distillation(teacher, cfg.distill.temperature)
    return SupervisedFineTuning()


def load_models(cfg: FinetuneConfig) -> tuple[nn.Module, Any, nn.Module | None]:
    """(the model to train, its tokenizer, the distillation teacher or None)."""
    import lmstack

    model, tokenizer = lmstack.load(cfg.model)
    if tokenizer is None:
        raise ConfigError(f"{cfg.model} has no tokenizer; fine-tuning renders chats with it")
    if cfg.objective != "distill":
        return model, tokenizer, None
    teacher = lmstack.load(cfg.distill.teacher)[0] if cfg.distill.teacher else model
    if cfg.distill.student_layers:
        model = layer_subset_student(teacher, cfg.distill.student_layers)
    elif teacher.config.vocab_size != model.config.vocab_size:
        raise ConfigError("distill.teacher must share the student's tokenizer (vocab sizes "
                          f"{teacher.config.vocab_size} and {model.config.vocab_size} differ)")
    return model, tokenizer, teacher


def build_finetune_trainer(cfg: FinetuneConfig, console: Any = None) -> FinetuneTrainer:
    model, tokenizer, teacher = load_models(cfg)
    reference = None
    if cfg.objective == "dpo" and cfg.dpo.reference == "model":
        reference = copy.deepcopy(model).eval().requires_grad_(False)
    train, val = build_data(cfg, tokenizer)
    # Before the adapter: DPO's reference is the base model (a fresh prompt or prefix, unlike
    # a fresh LoRA, already changes the outputs).
    objective = build_objective(cfg, model, train, val, reference, teacher)
    model, _ = prepare(cfg.method, model, cfg.method_options, tokenizer)  # may wrap it
    run = trainer_config(cfg.optimizer, cfg.schedule, cfg.training)
    return FinetuneTrainer(model, objective, train, run, val, tokenizer, console=console,
                           method=method(cfg.method), base_model=cfg.model)


def finetune_from_config(cfg: FinetuneConfig, console: Any = None) -> dict[str, Any]:
    """Train as the config says; returns the Trainer's summary plus parameter counts."""
    trainer = build_finetune_trainer(cfg, console)
    model = trainer.raw_model
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    if console is not None:
        console.print(f"{cfg.method} / {cfg.objective}: {trainable:,} of {total:,} parameters "
                      f"train ({100 * trainable / total:.2f}%), {len(trainer.train_data):,} "
                      "training rows")
    summary = trainer.fit()
    return {**summary, "trainable": trainable, "total": total,
            "saved": str(trainer.out_dir / trainer.method.saves)}
