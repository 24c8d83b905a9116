"""Export a Llama-family decoder to ONNX with a KV cache, in Hugging Face optimum's layout.

The graph takes input_ids, attention_mask [B, past + T], position_ids and, per layer N,
`past_key_values.N.key` / `.value` [B, kv_heads, past, head_dim]; it returns logits and
`present.N.key` / `.value` (past and new keys together), so a runtime feeds each step's present
back as the next step's past, as optimum's ORTModelForCausalLM does. The past may be empty
(length 0) for the first step. The graph is traced from lmstack's own Llama blocks: only the
step context differs, one that concatenates past and new keys instead of writing a cache.
Uses torch's TorchScript-based exporter (`dynamo=False`), which needs no onnxscript.
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from lmstack.fileio import atomic_write, atomic_write_text
from lmstack.models.llama import LlamaForCausalLM
from lmstack.nn.attention import additive_mask

OPSET = 17


def past_names(num_layers: int) -> list[str]:
    return [f"past_key_values.{i}.{kv}" for i in range(num_layers) for kv in ("key", "value")]


def present_names(num_layers: int) -> list[str]:
    return [f"present.{i}.{kv}" for i in range(num_layers) for kv in ("key", "value")]


class ConcatStep:
    """A StepContext whose keys are explicit tensors: each layer's past, then its T new ones.

    The mask is always built (never None): a traced graph must not bake in the shortcut of
    SDPA's is_causal, which only holds for some shapes.
    """

    def __init__(self, positions: Tensor, padding_mask: Tensor, past: list[tuple[Tensor, Tensor]]):
        self.positions, self.padding_mask, self.past = positions, padding_mask, past
        self.present: list[tuple[Tensor, Tensor]] = []

    @property
    def max_context(self) -> int:
        return self.padding_mask.shape[1]

    def attention_mask(self, dtype: torch.dtype, sliding_window: int | None = None) -> Tensor:
        T, L = self.positions.shape[1], self.padding_mask.shape[1]
        device = self.positions.device
        q_pos = torch.arange(T, device=device)[:, None] + (L - T)  # new tokens are the last T
        k_pos = torch.arange(L, device=device)[None, :]
        allowed = k_pos <= q_pos  # [T, L]
        if sliding_window is not None:
            allowed = allowed & (k_pos > q_pos - sliding_window)
        allowed = allowed[None, None] & self.padding_mask[:, None, None, :].bool()
        return additive_mask(allowed, dtype)  # [B, 1, T, L]

    def update(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        past_k, past_v = self.past[layer]
        k, v = torch.cat([past_k, k], dim=2), torch.cat([past_v, v], dim=2)
        self.present.append((k, v))
        return k, v


class OnnxDecoder(nn.Module):
    """The exported forward: flat tensors in and out, as an ONNX graph's inputs and outputs."""

    def __init__(self, model: LlamaForCausalLM):
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, attention_mask: Tensor, position_ids: Tensor,
                *past: Tensor) -> tuple[Tensor, ...]:
        step = ConcatStep(position_ids, attention_mask, list(zip(past[0::2], past[1::2],
                                                                 strict=True)))
        logits = self.model(input_ids, context=step)  # [B, T, vocab]
        return logits, *(t for kv in step.present for t in kv)


def rms_norm_symbolic(g, x, normalized_shape, weight, eps):
    """aten::rms_norm (RMSNorm's fused fp32 path) as plain ONNX ops: the TorchScript exporter
    has no rule for it, and ONNX's own RMSNormalization needs opset 23."""
    from torch.onnx import symbolic_helper

    eps = symbolic_helper._maybe_get_const(eps, "f")
    eps = torch.finfo(torch.float32).eps if eps is None else eps  # F.rms_norm's default
    mean_square = g.op("ReduceMean", g.op("Mul", x, x), axes_i=[-1], keepdims_i=1)
    rms = g.op("Sqrt", g.op("Add", mean_square, g.op("Constant", value_t=torch.tensor(eps))))
    return g.op("Mul", g.op("Div", x, rms), weight)


def example_inputs(config, batch: int = 1, past: int = 2, new: int = 3) -> tuple[Tensor, ...]:
    """Dummy inputs for tracing: a non-empty past and several new tokens, so no size is 1 or 0
    and the tracer keeps every axis symbolic."""
    kv = torch.zeros(batch, config.num_key_value_heads, past, config.head_dim)
    positions = torch.arange(past, past + new).expand(batch, new)
    return (torch.zeros(batch, new, dtype=torch.long), torch.ones(batch, past + new,
            dtype=torch.long), positions, *[kv] * (2 * config.num_hidden_layers))


def export_onnx(model: LlamaForCausalLM, path: str | Path) -> Path:
    """Write `model` as one float32 ONNX decoder file at `path`, atomically (switches the
    model to eval mode; a bf16/fp16 model is exported from a float32 copy)."""
    if not isinstance(model, LlamaForCausalLM):  # ValueError: the CLI's one-line user error
        raise ValueError(  # noqa: TRY004
            f"ONNX export handles Llama-family decoders, not {type(model).__name__}")
    if model.config.n_experts:
        raise ValueError("ONNX export handles dense Llama models; this one is a mixture of experts")
    if next(model.parameters()).dtype != torch.float32:  # leave the caller's model as it is
        model = copy.deepcopy(model).float()
    model.eval()
    n = model.config.num_hidden_layers
    inputs = ["input_ids", "attention_mask", "position_ids", *past_names(n)]
    outputs = ["logits", *present_names(n)]
    axes = {"input_ids": {0: "batch", 1: "sequence"}, "position_ids": {0: "batch", 1: "sequence"},
            "attention_mask": {0: "batch", 1: "total_sequence"},
            "logits": {0: "batch", 1: "sequence"}}
    axes |= {name: {0: "batch", 2: "past_sequence"} for name in past_names(n)}
    axes |= {name: {0: "batch", 2: "total_sequence"} for name in present_names(n)}

    torch.onnx.register_custom_op_symbolic("aten::rms_norm", rms_norm_symbolic, OPSET)

    def write(tmp: str) -> None:
        # The tracer warns about every Python-level branch on a shape; lmstack's are fixed
        # for the export's example shapes on purpose (see example_inputs), so quiet them.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(OnnxDecoder(model), example_inputs(model.config), tmp,
                              dynamo=False, input_names=inputs, output_names=outputs,
                              dynamic_axes=axes, opset_version=OPSET)

    atomic_write(path, write)
    return Path(path)


def quantize_int8(fp32_path: str | Path, int8_path: str | Path) -> Path:
    """ONNX Runtime's dynamic quantization: int8 weights, activations quantized per batch at
    run time (MatMul and Gather, i.e. the projections and the embedding)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    atomic_write(int8_path, lambda tmp: quantize_dynamic(str(fp32_path), tmp,
                                                         weight_type=QuantType.QInt8))
    return Path(int8_path)


def export_folder(model: LlamaForCausalLM, tokenizer, out: str | Path, int8: bool = False
                  ) -> list[Path]:
    """model.onnx (+ model_int8.onnx), config.json and the tokenizer: a folder a runtime needs
    nothing else to serve, as optimum's exports are. Returns the ONNX files written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = [export_onnx(model, out / "model.onnx")]
    if int8:
        files.append(quantize_int8(files[0], out / "model_int8.onnx"))
    atomic_write_text(out / "config.json", json.dumps(model.config.to_dict(), indent=2))
    if tokenizer is not None:
        tokenizer.save(out)
    return files
