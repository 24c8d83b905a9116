"""Fine-tuning only the top of an encoder: the bottom layers are frozen, so their output for
every training window never changes and is computed once, then fed to the top each step.

On two CPU cores this is what makes whole long reviews affordable: 1,600 movie reviews are
~6,200 windows of 256 tokens, and a step reads all windows of 16 reviews. With MiniLM's
layers 1-4 frozen a step runs two layers forward and back instead of six; Lee et al. 2019
("What Would Elsa Do? Freezing Layers During Transformer Fine-Tuning") find that tuning only
the top layers keeps most of full fine-tuning's quality.
The cache is computed in eval mode (no dropout in the frozen layers) and, where
lmstack/train/precision.py's probe says bf16 pays on this machine, under bf16 autocast.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence

import torch
from torch import Tensor

from lmstack.apps.sentiment.classifier import TextClassifier
from lmstack.models.bert import BertForSequenceClassification
from lmstack.train.precision import choose_precision


@functools.cache
def bf16_pays(device: torch.device) -> bool:
    return choose_precision("auto", device).precision == "bf16"


def autocast_if_it_pays(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast where the precision probe picks bf16 for this device, else nothing."""
    if bf16_pays(device):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def freeze_bottom(model: BertForSequenceClassification, layers: int) -> None:
    """Stop gradients to the embeddings and the first `layers` encoder layers."""
    if not 0 < layers < model.config.num_hidden_layers:
        raise ValueError(f"freeze_layers must be between 1 and {model.config.num_hidden_layers - 1}"
                         f" (the encoder has {model.config.num_hidden_layers} layers), not {layers}")
    for module in (model.bert.embeddings, *model.bert.encoder.layer[:layers]):
        module.requires_grad_(False)


def pad(rows: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """[T_i, H] rows -> (hidden [B, T, H] right-padded with zeros, attention_mask [B, T])."""
    width = max(r.shape[0] for r in rows)
    hidden = rows[0].new_zeros(len(rows), width, rows[0].shape[1])
    mask = torch.zeros(len(rows), width, dtype=torch.long, device=rows[0].device)
    for i, r in enumerate(rows):
        hidden[i, :r.shape[0]] = r
        mask[i, :r.shape[0]] = 1
    return hidden, mask


@torch.no_grad()
def bottom_features(classifier: TextClassifier, windows: Sequence[list[int]],
                    layers: int) -> list[Tensor]:
    """Each window's hidden states [T_i, H] after the first `layers` layers, in fp32."""
    model = classifier.model
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out: list[Tensor] = [torch.empty(0)] * len(windows)
    order = sorted(range(len(windows)), key=lambda w: len(windows[w]))  # little padding
    for start in range(0, len(order), classifier.batch_size):
        batch = order[start:start + classifier.batch_size]
        ids, mask = classifier.collate([windows[w] for w in batch])  # [B, T]
        ids, mask = ids.to(device), mask.to(device)
        with autocast_if_it_pays(device):
            x = model.bert.run_layers(model.bert.embeddings(ids, None), mask, 0, layers)
        for i, w in enumerate(batch):  # [T_i, H] views would pin the whole batch: copy
            out[w] = x[i, :len(windows[w])].float().clone()
    model.train(was_training)
    return out


def top_logits(model: BertForSequenceClassification, features: Sequence[Tensor],
               layers: int) -> Tensor:
    """Class logits [B, num_labels] of windows from their cached `bottom_features`."""
    hidden, mask = pad(features)  # [B, T, H], [B, T]
    with autocast_if_it_pays(hidden.device):
        hidden = model.bert.run_layers(hidden, mask, start=layers)
        return model.head(hidden, mask).float()
