"""The real SmolLM2-135M, int8: its next-token choices agree with float32's on held-out text."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from lmstack.quant import quantize_model
from lmstack.quant.quality import compare_to_reference

TEXT = Path(__file__).resolve().parents[2].parent / "shared/data/pretrain/gutenberg" / \
    "The-Adventures-of-Sherlock-Holmes_1661.txt"


def test_int8_smollm2_top1_agrees_with_fp32(smollm2):
    if not TEXT.is_file():
        pytest.skip(f"{TEXT} (../shared/data) is not here")
    model, tokenizer, _ = smollm2
    text = TEXT.read_text(encoding="utf-8")[30_000:36_000]  # past the Gutenberg header
    ids = torch.tensor(tokenizer.encode(text, add_special_tokens=False))[:513]
    int8 = quantize_model(copy.deepcopy(model), "int8")  # the shared model stays float
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        r = compare_to_reference(model, {"int8": int8}, ids, ctx=256)
    finally:
        torch.set_num_threads(before)
    assert r["fp32"]["top1"] == 1.0 and r["fp32"]["kld"] == pytest.approx(0, abs=1e-6)
    assert r["int8"]["tokens"] == 256
    assert r["int8"]["top1"] >= 0.97, r
    assert r["int8"]["ppl"] <= 1.02 * r["fp32"]["ppl"], r
    assert 0 < r["int8"]["kld"] < 0.05, r
