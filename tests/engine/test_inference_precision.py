"""The inference-precision probe answers with a dtype this machine runs, and answers once."""

from __future__ import annotations

import torch

from lmstack.engine import probe_inference_dtype


def test_probe_picks_fp32_or_bf16_and_caches_its_answer():
    dtype = probe_inference_dtype(64, 128)
    assert dtype in (torch.float32, torch.bfloat16)
    assert probe_inference_dtype(64, 128) is dtype
    assert probe_inference_dtype.cache_info().hits >= 1
