"""Weights re-stored for inference: fused projections, and oneDNN-prepacked copies.

Fusion follows vLLM's QKVParallelLinear / MergedColumnParallelLinear: one larger matrix product
instead of three (q, k, v) or two (gate, up) small ones, each a memory-bound GEMV when
decoding. Packing is lmstack.nn.packed. Both keep the model's parameters and names.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lmstack.nn.packed import PackedLinear, PackedWeight, packed_linear, packing_available


class FusedLinear:
    """The weights of `linears` stacked along the output axis, the layers' own weights becoming
    views into the stack (same values, same shapes, same names: state_dict is unchanged).

    Not a Module and not a parameter: the Linear layers still own the weights. `column_major`
    stores the stack [in, out] in memory (see lmstack.engine.engine.column_major_weights).
    """

    def __init__(self, linears: list[nn.Linear], column_major: bool = False):
        self.linears = linears
        self.sizes = [lin.out_features for lin in linears]
        with torch.no_grad():
            weight = torch.cat([lin.weight for lin in linears])  # [sum(out), in]
            if column_major:
                weight = weight.t().contiguous().t()
            biases = [lin.bias for lin in linears]
            bias = None
            if any(b is not None for b in biases):
                bias = torch.cat([b if b is not None else weight.new_zeros(n)
                                  for b, n in zip(biases, self.sizes, strict=True)])
            start = 0
            for lin, n in zip(linears, self.sizes, strict=True):
                lin.weight.data = weight[start:start + n]
                if lin.bias is not None:
                    lin.bias.data = bias[start:start + n]
                start += n
        self.weight, self.bias = weight, bias
        self.packed: PackedWeight | None = None  # set by lmstack.nn.packed.pack_weights
        self._ptrs = [lin.weight.data_ptr() for lin in linears]

    def usable(self, *linears: nn.Module) -> bool:
        """Whether the stack still stands for `linears` (the owner's current layers): False
        when gradients are wanted (the stack is no parameter), when a layer was replaced or is
        no plain nn.Linear (an adapter wrapped it, even before fusing; it was quantized) or
        re-stored (`.to(dtype)`, a new state): the owner then runs its separate layers, which
        are always right."""
        return not torch.is_grad_enabled() and all(
            lin is own and type(lin) is nn.Linear and lin.weight.data_ptr() == p
            for lin, own, p in zip(linears, self.linears, self._ptrs, strict=True))

    def __call__(self, x: Tensor) -> Tensor:
        return packed_linear(x, self.weight, self.bias, self.packed)


def fuse_projections(model: nn.Module, column_major: bool = False) -> int:
    """Give every module with a `fuse_projections` method (attention's q/k/v, SwiGLU's
    gate/up) its fused weights; returns how many were fused. For inference on a model whose
    weights the caller owns: training or adapters on it afterwards would not see the stack."""
    fused = 0
    for module in model.modules():
        # Quantized projections (lmstack.quant) are stacked by lmstack.quant.fuse_quantized.
        plain = all(isinstance(c, nn.Linear) for c in module.children()
                    if hasattr(c, "in_features"))
        if module is not model and plain and hasattr(module, "fuse_projections"):
            module.fuse_projections(column_major)
            fused += 1
    return fused


def pack_weights(model: nn.Module) -> int:
    """Prepack every Linear weight of `model` (and fused stacks, see lmstack.nn.fusion) for
    oneDNN; returns how many were packed (0 where oneDNN or the dtype does not allow it)."""
    stacks = [f for m in model.modules() for f in vars(m).values() if isinstance(f, FusedLinear)]
    in_stack = {id(lin) for f in stacks for lin in f.linears}
    count = 0
    for stack in stacks:
        if packing_available(stack.weight):
            stack.packed = PackedWeight(stack.weight, [lin.weight for lin in stack.linears])
            count += 1
    for module in model.modules():
        if (type(module) is nn.Linear and id(module) not in in_stack
                and packing_available(module.weight)):
            module.__class__ = PackedLinear
            module.packed = PackedWeight(module.weight)
            count += 1
    return count
