"""A quantized model saves and loads as a folder (lmstack.load knows it), exports to GGUF with the
same blocks, and the engine generates from it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType as Q

import lmstack
from lmstack.engine import Engine
from lmstack.engine.params import SamplingParams
from lmstack.models.gguf import open_gguf
from lmstack.models.gguf_export import export_gguf
from lmstack.models.hub import ModelLoadError
from lmstack.quant import QuantLinear, model_bytes, quantize_model, save_quantized
from lmstack.quant.apply import dequantized_copy
from lmstack.quant.folder import QUANT_CONFIG
from lmstack.quant.ggml_blocks import to_blocks

IDS = torch.tensor([[5, 17, 42, 99, 3, 250, 7, 8]])


@pytest.mark.parametrize("scheme,group", [("int8", 32), ("int4", 64), ("q4_1", 32)])
def test_folder_round_trip_gives_the_same_logits(tiny_llama, tmp_path, scheme, group):
    with torch.no_grad():
        quantize_model(tiny_llama, scheme, group)
        before = tiny_llama(IDS)
        reference = dequantized_copy(tiny_llama)(IDS)  # plain Linear layers, decoded weights
    assert all(isinstance(m, QuantLinear) for m in (tiny_llama.lm_head,
                                                    tiny_llama.model.layers[0].mlp.down_proj))
    save_quantized(tiny_llama, None, tmp_path)
    loaded, tokenizer = lmstack.load(tmp_path)
    assert tokenizer is None
    with torch.no_grad():
        after = loaded(IDS)
    assert torch.equal(before, after)
    torch.testing.assert_close(before, reference, rtol=1e-4, atol=1e-4)
    assert loaded.lm_head.scheme == tiny_llama.lm_head.scheme
    assert loaded.model.embed_tokens.weight.dtype == torch.float32


def test_a_damaged_quant_config_is_one_clear_error(tiny_llama, tmp_path):
    save_quantized(quantize_model(tiny_llama, "int8"), None, tmp_path)
    spec = json.loads((tmp_path / QUANT_CONFIG).read_text())
    del spec["layers"]["lm_head"]
    (tmp_path / QUANT_CONFIG).write_text(json.dumps(spec))
    with pytest.raises(ModelLoadError, match="do not match quant_config.json"):
        lmstack.load(tmp_path)


def test_quantized_model_is_smaller(tiny_llama):
    fp32 = model_bytes(tiny_llama)
    assert model_bytes(quantize_model(tiny_llama, "int4", 32)) < 0.5 * fp32


def test_gguf_export_keeps_the_q4_0_blocks(tiny_llama, tmp_path):
    quantize_model(tiny_llama, "q4_0")
    path = export_gguf(dequantized_copy(tiny_llama), None, tmp_path / "m.gguf", "q4_0")
    tensors = {t.name: t for t in open_gguf(path).tensors}
    down = tensors["blk.1.ffn_down.weight"]
    assert down.tensor_type == Q.Q4_0
    ours = to_blocks(tiny_llama.model.layers[1].mlp.down_proj.quant_weight, Q.Q4_0)
    assert np.array_equal(np.asarray(down.data).reshape(ours.shape), ours)


def test_engine_generates_from_a_quantized_model(tiny_llama):
    quantize_model(tiny_llama, "int4", 32)
    prompt = IDS[0].tolist()
    engine = Engine(tiny_llama, None, max_num_seqs=4, column_major=True)
    outs = engine.generate([prompt, prompt[:3]], SamplingParams(max_tokens=6, temperature=0))
    # the reference: greedy decoding by full forwards of the same quantized model, no cache
    for out, p in zip(outs, [prompt, prompt[:3]], strict=True):
        ids = list(p)
        with torch.no_grad():
            for _ in range(6):
                ids.append(int(tiny_llama(torch.tensor([ids]))[0, -1].argmax()))
        assert out.token_ids == ids[len(p):]
