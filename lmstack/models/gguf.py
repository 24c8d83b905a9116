"""Read llama.cpp's GGUF files into lmstack's Llama family: metadata -> config, blocks -> weights.

Follows llama.cpp's tensor names and metadata keys (gguf-py's constants; convert_hf_to_gguf.py,
whose Q/K row permutation we undo) and transformers' GGUF loader, which the parity tests match.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from lmstack.models import registry
from lmstack.models.gguf_quants import QuantTypeError, dequantize
from lmstack.models.hub import DTYPES, ModelLoadError
from lmstack.models.llama import LlamaConfig, LlamaForCausalLM
from lmstack.nn.positions import rope_inverse_frequencies

ARCHITECTURES = ("llama", "qwen2")
# Tensors outside the blocks, then each block's, as llama.cpp names them -> our (HF) names.
GLOBAL_NAMES = {
    "token_embd": "model.embed_tokens",
    "output_norm": "model.norm",
    "output": "lm_head",
}
BLOCK_NAMES = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
GGUF_GLOBAL = {ours: theirs for theirs, ours in GLOBAL_NAMES.items()}  # for export
GGUF_BLOCK = {ours: theirs for theirs, ours in BLOCK_NAMES.items()}
# Llama-3 files store their rope scaling as this tensor; it becomes config (llama3_scaling).
ROPE_FREQS = "rope_freqs.weight"


class GGUFError(ModelLoadError):
    """A GGUF file lmstack cannot read; the message names what is wrong and the way out."""


def hf_name(name: str) -> str:
    """'blk.3.attn_q.weight' -> 'model.layers.3.self_attn.q_proj.weight'."""
    stem, _, kind = name.rpartition(".")
    if stem in GLOBAL_NAMES:
        return f"{GLOBAL_NAMES[stem]}.{kind}"
    parts = stem.split(".")
    if len(parts) == 3 and parts[0] == "blk" and parts[2] in BLOCK_NAMES:
        return f"model.layers.{parts[1]}.{BLOCK_NAMES[parts[2]]}.{kind}"
    raise GGUFError(f"unexpected tensor {name!r} in a Llama-family GGUF file")


def gguf_name(name: str) -> str:
    """The inverse of hf_name: 'lm_head.weight' -> 'output.weight'."""
    stem, _, kind = name.rpartition(".")
    if stem in GGUF_GLOBAL:
        return f"{GGUF_GLOBAL[stem]}.{kind}"
    _, _, layer, rest = stem.split(".", 3)
    return f"blk.{layer}.{GGUF_BLOCK[rest]}.{kind}"


def rotary_permute(w: np.ndarray, n_head: int, inverse: bool = False) -> np.ndarray:
    """llama.cpp interleaves each head's rotary pairs (x0, x_half, x1, ...) where HF keeps the
    halves apart (rotate_half): convert_hf_to_gguf permutes q/k rows; inverse=True undoes it."""
    half = w.shape[0] // n_head // 2
    split = (n_head, half, 2) if inverse else (n_head, 2, half)
    return w.reshape(*split, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _reader_class():
    from gguf import GGUFReader

    class PlainArrayReader(GGUFReader):
        """GGUFReader over a plain ndarray view of its memory map: each slice of a np.memmap
        runs a Python __array_finalize__, and a 49K-token vocabulary makes ~1M slices
        (3.2 s -> 1.1 s to open SmolLM2 here)."""

        @property
        def data(self) -> np.ndarray:
            return self._plain

        @data.setter
        def data(self, value: np.ndarray) -> None:
            self._plain = np.asarray(value)  # same mapped bytes, base-class views

    return PlainArrayReader


def open_gguf(path: str | Path):
    """A `gguf.GGUFReader` over the file (memory-mapped), or one clear line why not."""
    path = Path(path)
    if not path.is_file():
        raise GGUFError(f"no such GGUF file: {path}")
    try:
        return _reader_class()(path, "r")
    except Exception as e:  # noqa: BLE001 - the reader raises bare ValueError/IndexError/...
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise GGUFError(f"{path} is not a readable GGUF file, truncated or damaged ({detail}); "
                        "re-download or re-export it") from None


def read_metadata(reader) -> dict[str, Any]:
    """Every metadata key with its decoded value (strings, numbers, lists)."""
    return {name: field.contents() for name, field in reader.fields.items()}


def llama3_scaling(divisors: np.ndarray, head_dim: int, theta: float, old_len: int) -> dict:
    """Llama 3.x files hold their rope scaling as per-frequency divisors, not parameters:
    recover Meta's published ones (low 1, high 4, factor = the largest divisor) and check that
    they reproduce the divisors."""
    scaling = {"rope_type": "llama3", "factor": float(divisors.max()), "low_freq_factor": 1.0,
               "high_freq_factor": 4.0, "original_max_position_embeddings": old_len}
    implied = rope_inverse_frequencies(head_dim, theta) / rope_inverse_frequencies(
        head_dim, theta, scaling)
    if divisors.shape != implied.shape or not np.allclose(divisors, implied.numpy(), rtol=1e-4):
        raise GGUFError(f"{ROPE_FREQS} matches no Llama-3 rope scaling lmstack knows; "
                        "load the model's Hugging Face folder instead")
    return scaling


def config_from_metadata(meta: dict[str, Any], tensor_names: set[str],
                         rope_divisors: np.ndarray | None = None) -> LlamaConfig:
    """The LlamaConfig a llama/qwen2 GGUF's metadata (and its rope_freqs tensor) describe."""
    arch = meta.get("general.architecture")
    if arch not in ARCHITECTURES:
        raise GGUFError(f"GGUF architecture {arch!r} is not supported; lmstack reads "
                        f"{' and '.join(ARCHITECTURES)} files (for others, load the model's "
                        "Hugging Face folder)")
    try:
        return _llama_config(meta, arch, tensor_names, rope_divisors)
    except GGUFError:
        raise
    except (TypeError, ValueError) as e:  # e.g. int(None) for a missing key
        raise GGUFError(f"GGUF metadata is incomplete or inconsistent ({e}); "
                        "re-export the file") from None


def _llama_config(meta: dict[str, Any], arch: str, tensor_names: set[str],
                  rope_divisors: np.ndarray | None) -> LlamaConfig:
    def get(key: str, default: Any = None) -> Any:
        return meta.get(f"{arch}.{key}", default)

    required = ("block_count", "embedding_length", "feed_forward_length", "attention.head_count")
    lacking = [f"{arch}.{key}" for key in required if get(key) is None]
    if lacking:
        raise GGUFError(f"GGUF metadata lacks {', '.join(lacking)}; re-export the file")
    heads, hidden = int(get("attention.head_count")), int(get("embedding_length"))
    kv_heads = get("attention.head_count_kv", heads)
    if isinstance(kv_heads, list):  # per-layer counts (hybrid models): not the Llama family
        raise GGUFError("this GGUF has a different number of KV heads per layer; not supported")
    vocab = get("vocab_size") or len(meta.get("tokenizer.ggml.tokens") or []) or None
    scaling = None
    kind = get("rope.scaling.type")
    if kind not in (None, "none"):
        scaling = {"rope_type": kind, "factor": float(get("rope.scaling.factor", 1.0))}
        if get("rope.scaling.original_context_length"):
            scaling["original_max_position_embeddings"] = int(
                get("rope.scaling.original_context_length"))
    head_dim = int(get("attention.key_length", hidden // heads))
    theta = float(get("rope.freq_base", 10000.0))
    if rope_divisors is not None and not np.all(rope_divisors == 1):
        old_len = int(get("rope.scaling.original_context_length", 8192))
        scaling = llama3_scaling(rope_divisors, head_dim, theta, old_len)
    ids = {key: meta.get(f"tokenizer.ggml.{key.split('_')[0]}_token_id")
           for key in ("bos_token_id", "eos_token_id")}
    return LlamaConfig(
        model_type=arch,
        vocab_size=int(vocab) if vocab else 32000,
        hidden_size=hidden,
        intermediate_size=int(get("feed_forward_length")),
        num_hidden_layers=int(get("block_count")),
        num_attention_heads=heads,
        num_key_value_heads=int(kv_heads),
        head_dim=head_dim,
        max_position_embeddings=int(get("context_length", 2048)),
        rms_norm_eps=float(get("attention.layer_norm_rms_epsilon", 1e-5)),
        rope_theta=theta,
        rope_scaling=scaling,
        attention_bias=arch == "llama" and "blk.0.attn_q.bias" in tensor_names,
        tie_word_embeddings="output.weight" not in tensor_names,
        pad_token_id=meta.get("tokenizer.ggml.padding_token_id"),
        **ids,
    )


def state_dict_from_gguf(reader, config: LlamaConfig) -> dict[str, torch.Tensor]:
    """Every tensor dequantized to float32 under its HF name, rotary permutation undone."""
    state = {}
    for t in reader.tensors:
        if t.name == ROPE_FREQS:
            continue
        name = hf_name(t.name)
        shape = tuple(int(n) for n in reversed(t.shape.tolist()))  # GGUF lists ne0 (columns) first
        try:
            w = dequantize(t.data, int(t.tensor_type), shape)
        except QuantTypeError as e:
            raise GGUFError(f"{t.name}: {e}") from None
        # llama.cpp permutes llama's q/k (weights and biases); qwen2 uses the HF layout as-is.
        if config.model_type == "llama" and ".q_proj." in name:
            w = rotary_permute(w, config.num_attention_heads, inverse=True)
        elif config.model_type == "llama" and ".k_proj." in name:
            w = rotary_permute(w, config.num_key_value_heads, inverse=True)
        state[name] = torch.from_numpy(w)  # a fresh array (dequantize never returns the map)
    return state


def model_from_gguf(reader, meta: dict[str, Any], dtype=None, device=None) -> LlamaForCausalLM:
    """A LlamaForCausalLM filled with the file's weights (dequantized; float32 unless `dtype`)."""
    tensors = {t.name: t for t in reader.tensors}
    divisors = dequantize(tensors[ROPE_FREQS].data, int(tensors[ROPE_FREQS].tensor_type),
                          (int(tensors[ROPE_FREQS].n_elements),)) if ROPE_FREQS in tensors else None
    config = config_from_metadata(meta, set(tensors), divisors)
    # The registry names the class of the file's model_type (llama -> LlamaForCausalLM, qwen2
    # -> Qwen2ForCausalLM: one class); meta device: no time on a random init the weights replace.
    arch = registry.for_model_type(config.model_type, "ForCausalLM")
    with torch.device("meta"):
        model = arch.build(config)
    config.architectures = [arch.name]
    state = state_dict_from_gguf(reader, config)
    own = model.state_dict()
    expected = set(own) - set(model.tied_weights())
    missing = sorted(expected - set(state))
    wrong = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}"
             for k, v in state.items() if k in own and v.shape != own[k].shape]
    if missing or wrong:
        raise GGUFError("GGUF tensors do not match its metadata: "
                        + "; ".join([f"missing {', '.join(missing[:3])}"] * bool(missing)
                                    + [f"shape {', '.join(wrong[:3])}"] * bool(wrong)))
    model.load_state_dict(state, strict=False, assign=True)
    model.tie_weights()
    for m in model.modules():
        if hasattr(m, "reset_buffers"):
            m.reset_buffers()
    if isinstance(dtype, str):
        dtype = DTYPES[dtype]
    dtype = dtype or torch.float32
    model.config.torch_dtype = str(dtype).removeprefix("torch.")
    return model.to(device=device, dtype=dtype).eval()


def load_gguf(path: str | Path, dtype=None, device=None):
    """(model, tokenizer) from a GGUF file, as `lmstack.load` returns for an HF folder."""
    from lmstack.tokenizer.gguf_vocab import tokenizer_from_gguf

    reader = open_gguf(path)
    meta = read_metadata(reader)
    model = model_from_gguf(reader, meta, dtype=dtype, device=device)
    return model, tokenizer_from_gguf(meta)


def describe_gguf(path: str | Path) -> dict[str, Any]:
    """What `lmstack info` shows for a GGUF file, read from its header alone (no dequantizing)."""
    reader = open_gguf(path)
    meta = {k: f.contents() for k, f in reader.fields.items() if not k.startswith("tokenizer.ggml")}
    arch = meta.get("general.architecture", "?")
    types: dict[str, list[int]] = {}
    for t in reader.tensors:
        count_bytes = types.setdefault(t.tensor_type.name, [0, 0, 0])
        count_bytes[0] += 1
        count_bytes[1] += int(t.n_elements)
        count_bytes[2] += int(t.n_bytes)
    hparams = {key: meta[f"{arch}.{key}"] for key in (
        "block_count", "embedding_length", "feed_forward_length", "attention.head_count",
        "attention.head_count_kv", "context_length", "vocab_size", "rope.freq_base",
    ) if f"{arch}.{key}" in meta}
    return {
        "architecture": arch,
        "name": meta.get("general.name"),
        "hparams": hparams,
        "parameters": sum(n for _, n, _ in types.values()),
        "tensor_types": {k: {"tensors": c, "parameters": n, "bytes": b}
                         for k, (c, n, b) in sorted(types.items())},
        "tensor_bytes": sum(b for _, _, b in types.values()),
        "file_bytes": Path(path).stat().st_size,
        "tokenizer": reader.fields["tokenizer.ggml.model"].contents()
        if "tokenizer.ggml.model" in reader.fields else None,
        "chat_template": "tokenizer.chat_template" in reader.fields,
    }
