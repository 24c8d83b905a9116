"""Quantize a model: every nn.Linear (the output head included, unless skipped) becomes a
QuantLinear; embeddings, norms and biases stay float (small, and sensitive).

Schemes: "int8" (per output channel), "int4" (groups of `group`, symmetric or not), and
llama.cpp's "q8_0", "q4_0", "q4_1" (groups of 32, llama.cpp's rounding, exportable to GGUF
unchanged); the output head ("lm_head") takes 8-bit groups of 32 under all of them
(HEAD_SCHEMES). A calibration method (lmstack.quant.awq) rescales the float model first.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lmstack.quant.ggml_blocks import GGML_TYPES, quantize_ggml
from lmstack.quant.kernels import quant_matmul
from lmstack.quant.linear import QuantLinear
from lmstack.quant.schemes import QuantSchemeError, QuantWeight, quantize_int4, quantize_int8

SCHEMES = ("int8", "int4", *GGML_TYPES)
HEAD = "lm_head"
HEAD_SCHEMES = {"int8": "int8-g32", "int4": "int8-g32", "q4_0": "q8_0", "q4_1": "q8_0"}


def scheme_name(scheme: str, group: int = 32, symmetric: bool = False) -> str:
    """The full name a layer records: 'int8', 'q4_1', 'int4-g64-asym'."""
    if scheme != "int4":
        return scheme
    return f"int4-g{group}-{'sym' if symmetric else 'asym'}"


def quantize_weight(weight: Tensor, scheme: str, group: int = 32, symmetric: bool = False
                    ) -> QuantWeight:
    """One [N, K] weight by `scheme` (see the module docstring)."""
    if scheme == "int8":
        return quantize_int8(weight)
    if scheme == "int4":
        return quantize_int4(weight, group, symmetric)
    if scheme in GGML_TYPES:
        return quantize_ggml(weight, GGML_TYPES[scheme])
    raise QuantSchemeError(f"unknown scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")


def linear_layers(model: nn.Module, skip: tuple[str, ...] = ()) -> dict[str, nn.Linear]:
    """{qualified name: layer} of the model's nn.Linear layers, less those named in `skip`."""
    return {name: m for name, m in model.named_modules()
            if isinstance(m, nn.Linear) and name.rsplit(".", 1)[-1] not in skip and name not in skip}


def replace_module(model: nn.Module, name: str, new: nn.Module) -> None:
    owner, _, attr = name.rpartition(".")
    setattr(model.get_submodule(owner) if owner else model, attr, new)


@torch.no_grad()
def quantize_model(model: nn.Module, scheme: str = "int8", group: int = 32,
                   symmetric: bool = False, skip: tuple[str, ...] = (), tag: str = ""
                   ) -> nn.Module:
    """Quantize `model`'s Linear layers in place (returns it); `skip` names layers to keep
    float ("lm_head"); `tag` is appended to the recorded scheme ("awq")."""
    if scheme not in SCHEMES:
        raise QuantSchemeError(f"unknown scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    name_ = scheme_name(scheme, group, symmetric) + (f"-{tag}" if tag else "")
    for name, lin in linear_layers(model, skip).items():
        if name == HEAD and scheme in HEAD_SCHEMES:
            # The output head takes 8 bits in groups of 32 whatever the blocks take (llama.cpp
            # keeps output.weight at 6-8 bits in its 4-bit files too). On SmolLM2, per-row int8
            # there cost top-1 agreement 96.7% vs 97.9% with a float head; an int4 head alone
            # cost +6% perplexity (512-1024 held-out tokens).
            head = HEAD_SCHEMES[scheme]
            qw = quantize_int8(lin.weight, 32) if head == "int8-g32" else quantize_weight(
                lin.weight, head)
            layer = QuantLinear(qw, lin.bias, head)
        else:
            layer = QuantLinear(quantize_weight(lin.weight, scheme, group, symmetric),
                                lin.bias, name_)
        replace_module(model, name, layer)
    fuse_quantized(model)
    return model


def model_bytes(model: nn.Module) -> int:
    """Bytes the weights take: codes and scales for QuantLinear, storage for the rest (a tied
    weight counted once)."""
    seen, total = set(), 0
    for m in model.modules():
        if isinstance(m, QuantLinear):
            total += m.nbytes
            continue
        for t in [*m.parameters(recurse=False), *m.buffers(recurse=False)]:
            if t is not None and t.data_ptr() not in seen:
                seen.add(t.data_ptr())
                total += t.numel() * t.element_size()
    return total


class QuantStack:
    """Quantized q/k/v (or gate/up) as one product: their codes and scales stacked by rows, as
    lmstack.nn.fusion.FusedLinear does for float weights (one kernel call instead of three)."""

    def __init__(self, layers: list[QuantLinear]):
        self.layers = layers
        ws = [lin.quant_weight for lin in layers]
        mins = None if ws[0].minimum is None else torch.cat([w.minimum for w in ws])
        self.weight = QuantWeight(ws[0].kind, torch.cat([w.q for w in ws]),
                                  torch.cat([w.scale for w in ws]), mins,
                                  (sum(w.shape[0] for w in ws), ws[0].shape[1]))
        biases = [lin.bias for lin in layers]
        self.bias = None if all(b is None for b in biases) else torch.cat([
            b if b is not None else torch.zeros(lin.out_features) for b, lin in zip(
                biases, layers, strict=True)])

    def usable(self, *layers: nn.Module) -> bool:
        """The owner's layers are still these (not replaced) and no gradient is wanted."""
        return not torch.is_grad_enabled() and all(
            a is b for a, b in zip(layers, self.layers, strict=True))

    def __call__(self, x: Tensor) -> Tensor:
        y = quant_matmul(x, self.weight)
        return y if self.bias is None else y + self.bias.to(y.dtype)


def fuse_quantized(model: nn.Module) -> int:
    """Stack attention's q/k/v and SwiGLU's gate/up where all are QuantLinear of one kind and
    group size (the attribute names lmstack.nn.attention and lmstack.nn.feedforward read)."""
    fused = 0
    for module in model.modules():
        for attr, names in (("qkv", ("q_proj", "k_proj", "v_proj")),
                            ("gate_up", ("gate_proj", "up_proj"))):
            layers = [getattr(module, n, None) for n in names]
            if hasattr(module, attr) and all(isinstance(lin, QuantLinear) for lin in layers) \
                    and len({(lin.kind, lin.scales.shape[1]) for lin in layers}) == 1:
                setattr(module, attr, QuantStack(layers))
                fused += 1
    return fused


def dequantized_copy(model: nn.Module) -> nn.Module:
    """A float32 copy of a quantized model, each QuantLinear an nn.Linear holding the values its
    codes stand for: the reference the quality report compares against, and what GGUF export
    writes (re-rounding Q8_0/Q4_0/Q4_1 values to their own type gives back the same blocks)."""
    import copy

    out = copy.deepcopy(model)
    for name, m in list(out.named_modules()):
        if isinstance(m, QuantLinear):
            replace_module(out, name, m.dequantized())
    for module in out.modules():
        for attr in ("qkv", "gate_up"):
            if isinstance(getattr(module, attr, None), QuantStack):
                setattr(module, attr, None)
    return out
