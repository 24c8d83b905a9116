"""Fused projections for inference: several Linear layers that read the same input, as one.

Follows vLLM's QKVParallelLinear / MergedColumnParallelLinear: one larger matrix product instead
of three (q, k, v) or two (gate, up) small ones, each a memory-bound GEMV when decoding.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


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
        self._ptrs = [lin.weight.data_ptr() for lin in linears]

    def usable(self, *linears: nn.Module) -> bool:
        """Whether the stack still stands for `linears` (the owner's current layers): False
        when gradients are wanted (the stack is no parameter), when a layer was replaced (an
        adapter wrapped it) or re-stored (`.to(dtype)`, a new state): the owner then runs its
        separate layers, which are always right."""
        return not torch.is_grad_enabled() and all(
            lin is own and lin.weight.data_ptr() == p
            for lin, own, p in zip(linears, self.linears, self._ptrs, strict=True))

    def __call__(self, x: Tensor) -> Tensor:
        return torch.nn.functional.linear(x, self.weight, self.bias)


def fuse_projections(model: nn.Module, column_major: bool = False) -> int:
    """Give every module with a `fuse_projections` method (attention's q/k/v, SwiGLU's
    gate/up) its fused weights; returns how many were fused. For inference on a model whose
    weights the caller owns: training or adapters on it afterwards would not see the stack."""
    fused = 0
    for module in model.modules():
        if module is not model and hasattr(module, "fuse_projections"):
            module.fuse_projections(column_major)
            fused += 1
    return fused
