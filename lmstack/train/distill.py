"""Knowledge distillation: a student learns the teacher's softened next-token distribution
(Hinton et al. 2015, "Distilling the Knowledge in a Neural Network"; DistilBERT's recipe of a
student made from every other teacher layer, Sanh et al. 2019).

The loss is the forward KL(teacher || student) at temperature tau, scaled by tau^2 so its
gradients keep their size as tau changes; it is taken on the assistant tokens of SFT batches.
"""

from __future__ import annotations

import copy
import dataclasses

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmstack.data.mlm import IGNORE_INDEX
from lmstack.nn.step_context import packed_step
from lmstack.train.objectives import Terms


def distillation_kl(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0
                    ) -> Tensor:
    """tau^2 * KL(softmax(teacher / tau) || softmax(student / tau)) per position [...]."""
    teacher = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    student = F.log_softmax(student_logits.float() / temperature, dim=-1)
    return (teacher.exp() * (teacher - student)).sum(-1) * temperature ** 2


class Distillation:
    """Forward KL to a frozen teacher's logits on SFT batches (the same packed rows)."""

    name = "distill"

    def __init__(self, teacher: nn.Module, temperature: float = 2.0):
        self.teacher, self.temperature = teacher.eval().requires_grad_(False), temperature

    def _split(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        return batch["input_ids"][:, :-1], batch["labels"][:, 1:], batch["segment_ids"][:, :-1]

    def counts(self, batch: dict[str, Tensor]) -> dict[str, int]:
        return {"kd": int((self._split(batch)[1] != IGNORE_INDEX).sum())}

    def input_tokens(self, batch: dict[str, Tensor]) -> int:
        return int((self._split(batch)[2] != 0).sum())

    def __call__(self, model: nn.Module, batch: dict[str, Tensor]) -> Terms:
        inputs, targets, segments = self._split(batch)
        context = packed_step(segments)
        with torch.no_grad():
            teacher = self.teacher(inputs, context=context)  # [B, T, vocab]
        kl = distillation_kl(model(inputs, context=context), teacher, self.temperature)
        mask = targets != IGNORE_INDEX
        return {"kd": (kl[mask].sum(), mask.sum())}


def layer_subset_student(teacher: nn.Module, num_layers: int) -> nn.Module:
    """A student with `num_layers` of the teacher's layers, evenly spaced, plus its embeddings,
    final norm and head: it shares the tokenizer and starts from the teacher's weights."""
    total = teacher.config.num_hidden_layers
    if not 0 < num_layers <= total:
        raise ValueError(f"a student needs 1 to {total} layers (the teacher's), not {num_layers}")
    keep = [round(i * (total - 1) / max(num_layers - 1, 1)) for i in range(num_layers)]
    student = copy.deepcopy(teacher)
    student.config = dataclasses.replace(teacher.config, num_hidden_layers=num_layers)
    layers = student.model.layers
    student.model.layers = nn.ModuleList(layers[i] for i in keep)
    for i, layer in enumerate(student.model.layers):  # attention layers know their index
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = i
    return student.requires_grad_(True)
