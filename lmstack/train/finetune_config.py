"""The YAML `lmstack finetune --config` reads: which model, which method (full, lora, ...),
which objective (sft, dpo, orpo, distill), the data files, and the usual optimizer, schedule
and run sections (train/config.py's own, so both commands read the same way).

Follows the spirit of LLaMA-Factory's and torchtune's fine-tuning recipes; unknown keys and
impossible combinations are one-line errors naming the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from lmstack.train.config import (
    ConfigError,
    OptimizerSection,
    ScheduleSection,
    TrainingSection,
    _Section,
    describe_error,
    read_yaml_config,
)

METHODS = Literal["full", "lora", "dora", "prefix", "prompt", "ia3", "adapter"]
OBJECTIVES = Literal["sft", "dpo", "orpo", "distill", "classify"]


class FinetuneData(_Section):
    files: list[Path] = Field(min_length=1)  # JSON arrays or JSONL of chat/preference records
    max_len: int = Field(512, gt=8)  # tokens per example (longer ones are cut)
    pack: bool = True  # several SFT examples per row, none attending to another
    val_fraction: float = Field(0.05, ge=0.0, lt=1.0)
    limit: int | None = Field(None, gt=0)  # the first N records of each file


class DPOSection(_Section):
    beta: float = Field(0.1, gt=0.0)
    # precomputed: score every pair once before training (no second model in memory);
    # model: keep a frozen copy of the starting model and score each batch with it.
    reference: Literal["precomputed", "model"] = "precomputed"


class ORPOSection(_Section):
    beta: float = Field(0.1, gt=0.0)


class DistillSection(_Section):
    teacher: str | None = None  # a folder, GGUF file or short name sharing the tokenizer
    temperature: float = Field(2.0, gt=0.0)
    student_layers: int | None = Field(None, gt=0)  # build the student from teacher layers


class FinetuneConfig(_Section):
    model: str = "smollm2"  # a folder, a GGUF file or a short name
    method: METHODS = "lora"
    objective: OBJECTIVES = "sft"
    method_options: dict[str, Any] = Field(default_factory=dict)  # e.g. lora's r, alpha
    data: FinetuneData
    dpo: DPOSection = Field(default_factory=DPOSection)
    orpo: ORPOSection = Field(default_factory=ORPOSection)
    distill: DistillSection = Field(default_factory=DistillSection)
    optimizer: OptimizerSection = Field(
        default_factory=lambda: OptimizerSection(lr=2e-4, weight_decay=0.0))
    schedule: ScheduleSection = Field(default_factory=lambda: ScheduleSection(warmup_steps=10))
    training: TrainingSection = Field(default_factory=lambda: TrainingSection(
        out_dir=Path("runs/finetune"), max_steps=100, micro_batch_size=4, eval_every=50,
        save_every=100))

    @field_validator("objective")
    @classmethod
    def _available(cls, name: str) -> str:
        if name == "classify":
            raise ValueError("classify is not available in `lmstack finetune` yet; use sft, "
                             "dpo, orpo or distill")
        return name

    @model_validator(mode="after")
    def _combination(self) -> FinetuneConfig:
        if self.objective == "distill" and self.distill.teacher is None \
                and self.distill.student_layers is None:
            raise ValueError("objective distill needs 'distill.teacher' (a model to learn from) "
                             "or 'distill.student_layers' (a student cut from 'model')")
        return self


def parse_finetune_config(raw: Any, source: str = "config") -> FinetuneConfig:
    from lmstack.adapt.methods import check_options

    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of keys at the top level")
    try:
        cfg = FinetuneConfig.model_validate(raw)
        check_options(cfg.method, cfg.method_options)
    except ValidationError as e:
        if not e.errors()[0]["loc"]:  # a combination of keys: its message names them
            raise ConfigError(f"{source}: {e.errors()[0]['msg'].removeprefix('Value error, ')}"
                              ) from None
        raise ConfigError(f"{source}: {describe_error(e)}") from None
    except ValueError as e:
        raise ConfigError(f"{source}: {e}") from None
    return cfg


def load_finetune_config(path: str | Path, overrides: dict[str, Any] | None = None
                         ) -> FinetuneConfig:
    return parse_finetune_config(read_yaml_config(path, overrides), str(path))
