"""Training configuration: pydantic models for the YAML files `lmstack train --config` reads.

Follows the spirit of litgpt's and torchtune's YAML recipes: one file names the model, data,
objective, optimizer, schedule and run settings; unknown keys are errors, never ignored.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)


class ConfigError(ValueError):
    """A config file that cannot be used; the message is one line naming the offending key."""


class _Section(BaseModel):
    # A typo such as `lrr: 3e-4` must fail loudly instead of silently training with defaults.
    model_config = ConfigDict(extra="forbid")


# The heads an objective here can train; the names themselves live in models/registry.py.
TRAINABLE_HEADS = ("ForCausalLM", "LMHeadModel", "ForMaskedLM", "ForPreTraining")


def trainable_architectures() -> list[str]:
    from lmstack.models.registry import ARCHITECTURES

    return sorted(n for n in ARCHITECTURES if n.endswith(TRAINABLE_HEADS))


class ModelSection(_Section):
    architecture: str = "LlamaForCausalLM"
    init_from: Path | None = None  # an HF folder to continue from instead of random weights
    config: dict[str, Any] = Field(default_factory=dict)  # HF config.json fields
    gradient_checkpointing: bool = False
    compile: bool = False

    @field_validator("architecture")
    @classmethod
    def _registered(cls, name: str) -> str:
        if name not in trainable_architectures():
            raise ValueError(f"{name!r} is not a trainable architecture; use one of "
                             f"{', '.join(trainable_architectures())}")
        return name


class DataSection(_Section):
    shards: Path | None = None  # a folder from `lmstack data prepare`
    files: list[Path] | None = None  # or raw text/JSONL, tokenized into out_dir/data
    text_key: str = "text"
    val_fraction: float = Field(0.05, ge=0.0, lt=1.0)
    seq_len: int = Field(256, gt=1)

    @model_validator(mode="after")
    def _one_source(self) -> DataSection:
        if (self.shards is None) == (self.files is None):
            raise ValueError("give exactly one of data.shards or data.files")
        return self


class ObjectiveSection(_Section):
    name: Literal["causal_lm", "mlm", "mlm_nsp"] = "causal_lm"
    mlm_probability: float = Field(0.15, gt=0.0, lt=1.0)


class OptimizerSection(_Section):
    name: Literal["adamw", "sgd", "rmsprop"] = "adamw"
    lr: float = Field(3e-4, gt=0.0)
    weight_decay: float = Field(0.1, ge=0.0)
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = Field(1e-8, gt=0.0)
    momentum: float = Field(0.9, ge=0.0)
    grad_clip: float | None = Field(1.0, gt=0.0)


class ScheduleSection(_Section):
    warmup_steps: int = Field(100, ge=0)
    min_lr_ratio: float = Field(0.1, ge=0.0, le=1.0)


class TrainingSection(_Section):
    out_dir: Path = Path("runs/train")
    max_steps: int = Field(1000, gt=0)
    max_minutes: float | None = Field(None, gt=0.0)  # stop early when the wall clock runs out
    micro_batch_size: int = Field(8, gt=0)
    grad_accum: int = Field(1, gt=0)
    # auto: bf16 on GPUs that support it; on CPU only if a quick probe finds bf16 matmuls faster
    # (CPUs without native bf16 instructions emulate it, and run it several times slower).
    precision: Literal["fp32", "bf16", "fp16", "auto"] = "fp32"
    seed: int = 1337
    threads: int | None = Field(None, gt=0)  # torch.set_num_threads; None keeps torch's default
    device: str = "auto"  # auto = cuda if available, else cpu
    distributed: Literal["ddp", "fsdp"] = "ddp"  # used only under torchrun
    log_every: int = Field(10, gt=0)
    eval_every: int = Field(200, gt=0)
    eval_batches: int = Field(20, gt=0)
    save_every: int = Field(500, gt=0)
    keep_last: int = Field(2, gt=0)
    progress: bool = True


class TrainConfig(_Section):
    model: ModelSection = Field(default_factory=ModelSection)
    tokenizer: Path | None = None  # defaults to model.init_from (which must then hold one)
    data: DataSection
    objective: ObjectiveSection = Field(default_factory=ObjectiveSection)
    optimizer: OptimizerSection = Field(default_factory=OptimizerSection)
    schedule: ScheduleSection = Field(default_factory=ScheduleSection)
    training: TrainingSection = Field(default_factory=TrainingSection)


def in_memory_config(out: str | Path, steps: int, batch: int, optimizer: OptimizerSection,
                     warmup_steps: int, minutes: float | None = None,
                     **training: Any) -> TrainConfig:
    """The Trainer's config for data already in memory (images, arrays): there is no tokenizer
    and no shard, so the data section stays empty (model_construct skips its "shards or files"
    check). It logs about 50 times and keeps only the last checkpoint, with no evaluation,
    unless `training` (TrainingSection fields) says otherwise."""
    run = {"log_every": max(1, steps // 50), "eval_every": 10**9, "save_every": 10**9,
           "keep_last": 1, "progress": False, **training}
    return TrainConfig.model_construct(
        model=ModelSection(), data=DataSection.model_construct(), optimizer=optimizer,
        schedule=ScheduleSection(warmup_steps=warmup_steps),
        training=TrainingSection(out_dir=Path(out), max_steps=steps, max_minutes=minutes,
                                 micro_batch_size=batch, **run))


def _where(loc: tuple) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def describe_error(err: ValidationError) -> str:
    """First problem of a pydantic error as one line: `key: what is wrong`."""
    e = err.errors()[0]
    key = _where(e["loc"])
    if e["type"] == "extra_forbidden":
        return f"unknown key '{key}'"
    if e["type"] == "missing":
        return f"missing required key '{key}'"
    more = f" (and {len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    return f"bad value for '{key}': {e['msg'].removeprefix('Value error, ')}{more}"


def parse_config(raw: Any, source: str = "config") -> TrainConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of sections at the top level")
    try:
        cfg = TrainConfig.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(f"{source}: {describe_error(e)}") from None
    check_model_config(cfg, source)
    return cfg


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read and validate a YAML config; relative paths stay relative to the working directory."""
    return parse_config(read_yaml_config(path, overrides), str(path))


def read_yaml_config(path: str | Path, overrides: dict[str, Any] | None = None) -> Any:
    """A YAML file's contents with `--set`-style overrides ({"a.b": value}) applied."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no such config file: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    if overrides and not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    for dotted, value in (overrides or {}).items():
        node = raw
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {dotted}: '{p}' holds a value, not a section")
        node[leaf] = value
    return raw


def model_config_class(architecture: str):
    from lmstack.models.registry import architecture as lookup

    return lookup(architecture).family.config_class


def check_model_config(cfg: TrainConfig, source: str) -> None:
    """model.config keys must be fields of the architecture's config dataclass."""
    from lmstack.models.registry import architecture

    family = architecture(cfg.model.architecture).family
    known = {f.name for f in dataclasses.fields(family.config_class)} - {"extra"}
    for key in cfg.model.config:
        if key not in known:
            raise ConfigError(f"{source}: unknown key 'model.config.{key}' for "
                              f"{cfg.model.architecture}")
    if cfg.model.init_from is None and not cfg.model.config:
        raise ConfigError(f"{source}: 'model.config' (HF config fields) or 'model.init_from' "
                          "is required")
    encoder = family.encoder  # BERT: masked objectives only
    if cfg.objective.name == "causal_lm" and encoder:
        raise ConfigError(f"{source}: bad value for 'objective.name': causal_lm needs a decoder; "
                          "BERT trains with mlm or mlm_nsp")
    if cfg.objective.name != "causal_lm" and not encoder:
        raise ConfigError(f"{source}: bad value for 'objective.name': {cfg.objective.name} "
                          "needs a BertFor... architecture")
    if cfg.objective.name == "mlm_nsp" and cfg.model.architecture != "BertForPreTraining":
        raise ConfigError(f"{source}: bad value for 'model.architecture': mlm_nsp needs "
                          "BertForPreTraining")
