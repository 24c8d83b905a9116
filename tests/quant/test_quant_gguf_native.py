"""A GGUF file's Q4_1 weights run as stored: the same logits as the dequantized float model."""

from __future__ import annotations

import torch

from lmstack.models.gguf import model_from_gguf, open_gguf, read_metadata
from lmstack.models.gguf_export import export_gguf
from lmstack.quant import QuantLinear
from lmstack.quant.gguf_native import load_gguf_native

IDS = torch.tensor([[5, 17, 42, 99, 3, 250, 7, 8]])


def test_q4_1_file_runs_from_its_blocks(tiny_llama, tmp_path):
    path = export_gguf(tiny_llama, None, tmp_path / "m.gguf", "q4_1")
    native, tokenizer = load_gguf_native(path)
    assert tokenizer is None  # written without one
    reader = open_gguf(path)
    float_model = model_from_gguf(reader, read_metadata(reader))  # every tensor dequantized
    attn = native.model.layers[0].self_attn
    assert isinstance(attn.q_proj, QuantLinear) and attn.q_proj.scheme == "q4_1"
    assert attn.qkv is not None  # stacked for decoding
    assert isinstance(native.lm_head, QuantLinear)  # tied: the head runs on the embedding blocks
    with torch.no_grad():
        torch.testing.assert_close(native(IDS), float_model(IDS), rtol=1e-4, atol=1e-4)
        # the deliberate break: q's rows left in llama.cpp's rotary order are caught
        attn.q_proj.qweight.copy_(attn.q_proj.qweight.flip(0))
        attn.qkv = None
        assert not torch.allclose(native(IDS), float_model(IDS), rtol=1e-4, atol=1e-4)
