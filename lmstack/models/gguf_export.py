"""Write a Llama-family model (and its byte-level BPE tokenizer) as a GGUF file for llama.cpp.

Follows llama.cpp's convert_hf_to_gguf.py (metadata keys, tensor names, the q/k rotary row
permutation, 1-D tensors kept in F32) through the `gguf` package's GGUFWriter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from gguf import GGMLQuantizationType as Q
from gguf import GGUFWriter, LlamaFileType, RopeScalingType

from lmstack.fileio import atomic_write
from lmstack.models.gguf import ROPE_FREQS, GGUFError, gguf_name, rotary_permute
from lmstack.models.gguf_quants import BLOCK_FORMATS, quantize
from lmstack.nn.positions import rope_inverse_frequencies

EXPORT_TYPES = {
    "f32": (Q.F32, LlamaFileType.ALL_F32),
    "f16": (Q.F16, LlamaFileType.MOSTLY_F16),
    "q8_0": (Q.Q8_0, LlamaFileType.MOSTLY_Q8_0),
    "q4_0": (Q.Q4_0, LlamaFileType.MOSTLY_Q4_0),
    "q4_1": (Q.Q4_1, LlamaFileType.MOSTLY_Q4_1),
}
# Mistral is llama.cpp's "llama" (its sliding window is dropped, as llama.cpp does).
GGUF_ARCH = {"llama": "llama", "mistral": "llama", "qwen2": "qwen2"}


def _add_hparams(w: GGUFWriter, cfg, file_type: int) -> None:
    w.add_block_count(cfg.num_hidden_layers)
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_rope_freq_base(float(cfg.rope_theta))
    w.add_layer_norm_rms_eps(float(cfg.rms_norm_eps))
    w.add_vocab_size(cfg.vocab_size)
    w.add_rope_dimension_count(cfg.head_dim)
    if cfg.head_dim != cfg.hidden_size // cfg.num_attention_heads:
        w.add_key_length(cfg.head_dim)
        w.add_value_length(cfg.head_dim)
    scaling = cfg.rope_scaling or {}
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind == "linear":
        w.add_rope_scaling_type(RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(float(scaling["factor"]))
    elif kind == "llama3":
        # As convert_hf_to_gguf: the scaling travels as per-frequency divisors (a tensor).
        w.add_rope_scaling_orig_ctx_len(int(scaling["original_max_position_embeddings"]))
        base = rope_inverse_frequencies(cfg.head_dim, cfg.rope_theta)
        scaled = rope_inverse_frequencies(cfg.head_dim, cfg.rope_theta, scaling)
        w.add_tensor(ROPE_FREQS, (base / scaled).numpy().astype(np.float32))
    elif scaling:
        raise GGUFError(f"rope scaling {kind!r} has no GGUF export here; only linear and llama3")
    w.add_file_type(int(file_type))


def _add_tokenizer(w: GGUFWriter, tokenizer, vocab_size: int) -> None:
    from lmstack.tokenizer.gguf_vocab import gguf_tokenizer_metadata

    meta = gguf_tokenizer_metadata(tokenizer, vocab_size)
    if len(meta["tokens"]) != vocab_size:
        raise GGUFError(f"the tokenizer has {len(meta['tokens'])} tokens but the model "
                        f"{vocab_size} embedding rows; resize the embeddings first")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(meta["pre"])
    w.add_token_list(meta["tokens"])
    w.add_token_types(meta["token_types"])
    w.add_token_merges(meta["merges"])
    ids = meta["special_ids"]
    for key, add in (("bos", w.add_bos_token_id), ("eos", w.add_eos_token_id),
                     ("unknown", w.add_unk_token_id), ("padding", w.add_pad_token_id)):
        if key in ids:
            add(ids[key])
    w.add_add_bos_token(meta["add_bos"])
    w.add_add_eos_token(meta["add_eos"])
    if meta["chat_template"]:
        w.add_chat_template(meta["chat_template"])


def _tensor(w: GGUFWriter, name: str, x: np.ndarray, qtype: Q) -> None:
    # Norms and biases stay F32 (they are tiny and sensitive); a row length the block size
    # does not divide falls back to F16, as llama.cpp's converter does.
    if x.ndim == 1:
        qtype = Q.F32
    elif x.shape[-1] % BLOCK_FORMATS[qtype][0]:
        qtype = Q.F16
    data = quantize(x, qtype)
    if qtype in (Q.F32, Q.F16):
        w.add_tensor(name, data)
    else:
        w.add_tensor(name, data, raw_shape=data.shape, raw_dtype=qtype)


def export_gguf(model, tokenizer, path: str | Path, type_: str = "f16") -> Path:
    """Write `model` (+ `tokenizer`, or None for weights only) to `path` as GGUF, atomically."""
    cfg = model.config
    if cfg.model_type not in GGUF_ARCH or not hasattr(model, "lm_head"):
        raise GGUFError(f"GGUF export supports Llama-family causal LMs, not {type(model).__name__}")
    if type_ not in EXPORT_TYPES:
        raise GGUFError(f"unknown GGUF type {type_!r}; choose one of {', '.join(EXPORT_TYPES)}")
    qtype, file_type = EXPORT_TYPES[type_]
    arch = GGUF_ARCH[cfg.model_type]
    path = Path(path)

    def write(tmp: str) -> None:
        w = GGUFWriter(tmp, arch)
        w.add_name(getattr(cfg, "name_or_path", None) or path.stem)
        _add_hparams(w, cfg, file_type)
        if tokenizer is not None:
            _add_tokenizer(w, tokenizer, cfg.vocab_size)
        tied = set(model.tied_weights())
        for name, t in model.state_dict().items():
            if name in tied:  # a missing output.weight tells readers to tie it
                continue
            x = t.detach().to("cpu", torch.float32).numpy()
            if arch == "llama" and ".q_proj." in name:
                x = rotary_permute(x, cfg.num_attention_heads)
            elif arch == "llama" and ".k_proj." in name:
                x = rotary_permute(x, cfg.num_key_value_heads)
            _tensor(w, gguf_name(name), x, qtype)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, write)
    return path
