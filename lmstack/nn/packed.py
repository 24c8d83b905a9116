"""oneDNN-prepacked bf16 Linear weights for CPU inference: the weight reordered once, not per call.

PyTorch's bf16 CPU matmul goes through oneDNN, which reorders the weight
into its blocked layout on every call; for decoding, where each weight is read once per token,
that reorder costs about as much as the product itself. Inductor's weight prepacking
(torch._inductor.fx_passes.mkldnn_fusion) does the reorder at compile time; this does it eagerly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

BATCH_HINT = 16  # oneDNN picks the blocked layout for this batch; any batch still works


def packing_available(weight: Tensor) -> bool:
    # bf16 only: there F.linear already runs oneDNN, so packing only drops the per-call
    # reorder (same results, 1.2-1.4x faster decoding). fp32 F.linear runs MKL, which beat
    # oneDNN's packed fp32 GEMV by ~20% at batch 1 here (and lost by 1.3x at batch 16).
    # An inference tensor keeps no version counter, so a later in-place write to it could not
    # be noticed: such weights are used as they are.
    return (not weight.is_inference() and weight.device.type == "cpu"
            and weight.dtype == torch.bfloat16 and torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.mkldnn, "_reorder_linear_weight"))


class PackedWeight:
    """A blocked copy of `weight` (twice the memory: the weight itself stays the parameter).

    `owners` are the parameters whose values it holds (default: the weight itself; for a
    fused stack, the layers' weights, which are views into it but keep their own version
    counters): an in-place write to any of them makes the copy stale.
    """

    def __init__(self, weight: Tensor, owners: list[Tensor] | None = None):
        with torch.no_grad():
            self.blocked = torch.ops.mkldnn._reorder_linear_weight(
                weight.detach().contiguous(), BATCH_HINT)
        self.owners = owners if owners is not None else [weight]
        self.ptr, self.versions = weight.data_ptr(), [w._version for w in self.owners]

    def current(self, weight: Tensor) -> bool:
        """False when gradients are wanted or the weight changed since packing (re-stored, or
        written in place, as load_state_dict does): then the caller uses the weight itself."""
        return (not torch.is_grad_enabled() and weight.data_ptr() == self.ptr
                and [w._version for w in self.owners] == self.versions)


def packed_linear(x: Tensor, weight: Tensor, bias: Tensor | None,
                  packed: PackedWeight | None) -> Tensor:
    """F.linear(x, weight, bias), from the packed copy when it is still the weight's."""
    if packed is not None and packed.current(weight):
        return torch.ops.mkldnn._linear_pointwise(x, packed.blocked, bias, "none", [], "")
    return F.linear(x, weight, bias)


class PackedLinear(nn.Linear):
    """An nn.Linear that also holds a PackedWeight: same parameters, names and state_dict.

    `pack_weights` turns existing Linear layers into this class in place (their identity,
    parameters and hooks stay), so no module tree is rebuilt."""

    packed: PackedWeight | None = None

    def forward(self, x: Tensor) -> Tensor:
        return packed_linear(x, self.weight, self.bias, self.packed)
