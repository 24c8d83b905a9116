"""Run a GGUF file's Q8_0 / Q4_0 / Q4_1 weights as they are stored: no dequantize, no re-rounding.

lmstack.models.gguf loads every tensor as float32; this then swaps each Linear whose tensor is
one of those block types for a QuantLinear built from the file's own bytes
(lmstack.quant.ggml_blocks). llama.cpp's q/k row permutation is undone on whole rows, so it
moves codes and scales together.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lmstack.models.gguf import hf_name, model_from_gguf, open_gguf, read_metadata, rotary_permute
from lmstack.quant.apply import fuse_quantized, replace_module
from lmstack.quant.ggml_blocks import GGML_TYPES, from_blocks
from lmstack.quant.linear import QuantLinear
from lmstack.quant.schemes import QuantWeight

BLOCK_TYPES = {int(q): name for name, q in GGML_TYPES.items()}


def _rows(w: QuantWeight, order: np.ndarray) -> QuantWeight:
    idx = torch.from_numpy(order)
    return QuantWeight(w.kind, w.q[idx], w.scale[idx],
                       None if w.minimum is None else w.minimum[idx], w.shape)


def load_gguf_native(path: str | Path):
    """(model, tokenizer or None) with every block-typed Linear weight kept in its GGUF blocks."""
    from lmstack.tokenizer.gguf_vocab import tokenizer_from_gguf

    reader = open_gguf(path)
    meta = read_metadata(reader)
    model = model_from_gguf(reader, meta)
    tokenizer = tokenizer_from_gguf(meta) if "tokenizer.ggml.model" in meta else None
    cfg = model.config
    for t in reader.tensors:
        if int(t.tensor_type) not in BLOCK_TYPES or not t.name.endswith(".weight"):
            continue
        name = hf_name(t.name).removesuffix(".weight")
        if name == "model.embed_tokens":  # the lookup stays float; a tied head uses the blocks
            if not cfg.tie_word_embeddings:
                continue
            name = "lm_head"
        shape = (int(t.shape[1]), int(t.shape[0]))  # GGUF lists columns first
        w = from_blocks(t.data, t.tensor_type, shape)
        heads = {".q_proj": cfg.num_attention_heads, ".k_proj": cfg.num_key_value_heads}
        for part, n_head in heads.items():
            if cfg.model_type == "llama" and name.endswith(part):
                w = _rows(w, rotary_permute(np.arange(shape[0]), n_head, inverse=True))
        lin = model.get_submodule(name)
        replace_module(model, name, QuantLinear(w, lin.bias, BLOCK_TYPES[int(t.tensor_type)]))
    fuse_quantized(model)
    return model, tokenizer
