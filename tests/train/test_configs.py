"""The YAML configs shipped in lmstack/configs validate and build the advertised model sizes."""

from __future__ import annotations

from pathlib import Path

import pytest

import lmstack
from lmstack.models.registry import architecture
from lmstack.train import load_config
from lmstack.train.config import model_config_class

CONFIGS = Path(lmstack.__file__).parent / "configs"


@pytest.mark.parametrize("name, low, high", [("tiny-llama", 3e6, 10e6),
                                             ("gpt2-small", 120e6, 130e6),
                                             ("llama-45m", 40e6, 50e6)])
def test_shipped_configs(name, low, high):
    import torch

    cfg = load_config(CONFIGS / f"{name}.yaml")
    fields = dict(cfg.model.config)
    fields.setdefault("vocab_size", {"gpt2-small": 50257, "llama-45m": 32000}.get(name, 4096))
    config = model_config_class(cfg.model.architecture)(**fields)
    with torch.device("meta"):  # count parameters without allocating them
        model = architecture(cfg.model.architecture).build(config)
    assert low <= model.num_parameters() <= high
