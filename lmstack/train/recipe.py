"""From a validated TrainConfig to a running Trainer: tokenizer, model, data, objective.

Follows litgpt's recipe scripts (config in, trained checkpoint folder out); `lmstack train`
is a thin shell over `train_from_config`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from lmstack.train.config import ConfigError, TrainConfig
from lmstack.train.distributed import DistInfo, barrier, init_distributed, shutdown


def load_tokenizer(cfg: TrainConfig):
    from lmstack.tokenizer import Tokenizer

    folder = cfg.tokenizer or cfg.model.init_from
    if folder is None:
        raise ConfigError("'tokenizer' is required (a tokenizer folder) unless model.init_from "
                          "holds one")
    return Tokenizer.from_folder(folder)


def build_model(cfg: TrainConfig, tokenizer: Any) -> torch.nn.Module:
    """Random init from model.config (vocab and special ids filled from the tokenizer), or the
    weights of model.init_from."""
    from lmstack.models import hub, registry

    torch.manual_seed(cfg.training.seed)  # every rank builds identical initial weights
    if cfg.model.init_from is not None:
        return hub.load_model(cfg.model.init_from, dtype=torch.float32).train()
    fields = dict(cfg.model.config)
    fields.setdefault("vocab_size", len(tokenizer))
    if fields["vocab_size"] < len(tokenizer):
        raise ConfigError(f"model.config.vocab_size {fields['vocab_size']} is smaller than the "
                          f"tokenizer's {len(tokenizer)} tokens")
    arch = registry.architecture(cfg.model.architecture)
    config_cls = arch.family.config_class
    names = {f.name for f in dataclasses.fields(config_cls)}
    if "model_type" in names:
        fields.setdefault("model_type", arch.model_type)
    for key in ("eos_token_id", "bos_token_id", "pad_token_id"):
        value = getattr(tokenizer, key, None)
        if value is not None:
            fields.setdefault(key, value)
    fields["architectures"] = [cfg.model.architecture]
    try:
        config = config_cls(**fields)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"model.config: {e}") from None
    positions = getattr(config, "max_position_embeddings", None)
    if positions is not None and positions < cfg.data.seq_len:
        raise ConfigError(f"data.seq_len {cfg.data.seq_len} exceeds the model's "
                          f"max_position_embeddings {positions}")
    return arch.build(config).train()


def prepare_data(cfg: TrainConfig, tokenizer: Any, dist: DistInfo) -> Path:
    """The shard folder: data.shards as given, or data.files tokenized once into out_dir/data."""
    from lmstack.data import prepare_shards

    if cfg.data.shards is not None:
        return cfg.data.shards
    folder = cfg.training.out_dir / "data"
    if dist.is_main and not (folder / "meta.json").is_file():
        prepare_shards(cfg.data.files, tokenizer, folder, cfg.data.val_fraction,
                       text_key=cfg.data.text_key, show_progress=cfg.training.progress)
    barrier(dist)
    return folder


def build_datasets(cfg: TrainConfig, tokenizer: Any, dist: DistInfo) -> tuple[Any, Any]:
    """(train, val) datasets for the objective; val is None when the split is too small."""
    from lmstack.data import (
        MLMSequences,
        NSPPairs,
        PackedSequences,
        SpecialIds,
        TokenShards,
        build_nsp_examples,
        split_sentences,
    )
    from lmstack.data.shards import read_documents, split_documents

    T, seed, obj = cfg.data.seq_len, cfg.training.seed, cfg.objective
    if obj.name == "mlm_nsp":
        # NSP needs sentence boundaries inside documents, which flat shards no longer have.
        if not cfg.data.files:
            raise ConfigError("objective mlm_nsp reads sentences from 'data.files', not shards")
        special = SpecialIds.from_tokenizer(tokenizer)
        splits: dict[str, list] = {"train": [], "val": []}
        for f in cfg.data.files:
            docs = read_documents(f, cfg.data.text_key)
            for name, part in zip(("train", "val"), split_documents(docs, cfg.data.val_fraction),
                                  strict=True):
                for doc in part:
                    sents = split_sentences(doc)
                    if sents:
                        splits[name].append(tokenizer.encode_batch(sents, add_special_tokens=False))
        sets = [NSPPairs(build_nsp_examples(splits[s], T, seed + i), T, special,
                         obj.mlm_probability, seed + i) if len(splits[s]) >= 2 else None
                for i, s in enumerate(("train", "val"))]
        return sets[0], sets[1]
    folder = prepare_data(cfg, tokenizer, dist)
    train, val = TokenShards.open(folder, "train"), TokenShards.open(folder, "val")
    if obj.name == "mlm":
        special = SpecialIds.from_tokenizer(tokenizer)
        p = obj.mlm_probability
        return (MLMSequences(train.tokens(), T, special, p, seed),
                MLMSequences(val.tokens(), T, special, p, seed + 1) if val.num_tokens >= T else None)
    return PackedSequences(train, T), (PackedSequences(val, T) if val.num_tokens > T else None)


def build_trainer(cfg: TrainConfig, dist: DistInfo | None = None, console: Any = None):
    from lmstack.train.objectives import build_objective
    from lmstack.train.trainer import Trainer

    dist = dist or DistInfo()
    tokenizer = load_tokenizer(cfg)
    train, val = build_datasets(cfg, tokenizer, dist)
    model = build_model(cfg, tokenizer)
    return Trainer(model, build_objective(cfg.objective.name), train, cfg, val, tokenizer, dist,
                   console)


def train_from_config(cfg: TrainConfig, resume: bool = False, console: Any = None) -> dict:
    """Train as the config says (joining torchrun's process group when launched by it)."""
    dist = init_distributed(cfg.training.device)
    try:
        if cfg.training.threads:
            torch.set_num_threads(cfg.training.threads)
        trainer = build_trainer(cfg, dist, console)
        say = console.print if dist.is_main and console is not None else lambda *a, **k: None
        if resume:
            if trainer.resume():
                say(f"resumed from {trainer.resumed_from} (step {trainer.step})", soft_wrap=True)
            else:
                say(f"no checkpoint under {cfg.training.out_dir}; starting fresh")
        n = trainer.raw_model.num_parameters()
        say(f"{cfg.model.architecture}: {n / 1e6:.2f}M parameters, "
            f"{len(trainer.train_data):,} training sequences of {cfg.data.seq_len}, "
            f"{dist.world_size} process(es), {trainer.precision}")
        summary = trainer.fit()
        summary["parameters"] = n
        # Once, from rank 0: under torchrun every process returns here.
        if "val_loss" in summary:
            say(f"val loss {summary['val_loss']:.4f} (ppl {summary['val_ppl']:.2f}) "
                f"after {summary['step']} steps")
        say(f"[bold green]checkpoints:[/] {cfg.training.out_dir / 'checkpoints'}")
        return summary
    finally:
        shutdown(dist)
