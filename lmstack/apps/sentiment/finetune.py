"""Fine-tuning a text classifier (and the step loop the Chinese encoder's pretraining shares).

The recipe of Devlin et al. 2019 for GLUE: AdamW, a short linear warmup then decay (cosine
here, lmstack's schedule), gradient clipping at 1.0, a few epochs at a small learning rate,
cross-entropy on the classification head over the whole model, or over its top layers only
when the bottom ones are frozen (frozen.py).
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmstack.apps.sentiment.classifier import TextClassifier, mean_by_text
from lmstack.apps.sentiment.frozen import bottom_features, freeze_bottom, top_logits
from lmstack.train.optim import WarmupCosine, build_optimizer


def train_steps(model: nn.Module, loss_of_step: Callable[[int], Tensor], steps: int, lr: float,
                warmup: int, weight_decay: float = 0.01,
                log: Callable[[str], None] | None = None, log_every: int = 20) -> list[float]:
    """Run `steps` optimizer steps on `loss_of_step(step)`; returns the loss of each step."""
    model.train()
    optimizer = build_optimizer(model, "adamw", lr, weight_decay, (0.9, 0.999), 1e-8, 0.0)
    schedule = WarmupCosine(optimizer, warmup, steps, min_ratio=0.0)
    losses, start = [], time.perf_counter()
    for step in range(steps):
        loss = loss_of_step(step)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if log is not None and ((step + 1) % log_every == 0 or step + 1 == steps):
            recent = losses[-log_every:]
            log(f"step {step + 1}/{steps}  loss {sum(recent) / len(recent):.4f}  "
                f"{time.perf_counter() - start:.0f}s")
    model.eval()
    return losses


def finetune(classifier: TextClassifier, texts: Sequence[str], labels: Sequence[int], *,
             epochs: float = 2.0, lr: float = 5e-5, batch_size: int = 16, seed: int = 0,
             max_steps: int | None = None, freeze_layers: int = 0,
             features: Sequence[Tensor] | None = None,
             log: Callable[[str], None] | None = None) -> list[float]:
    """Train the classifier on (text, label) pairs, shuffled once per epoch.

    Each step reads the windows the classifier's cut gives a text (one drawn at random in
    `chunks` mode) and takes one loss per text on the mean of its windows' logits. With
    `freeze_layers` k, only the layers above k and the head train, on the frozen bottom's
    output computed once (frozen.py); `features`, that output for every window of `texts` in
    order, may be passed in when already computed (benchmarks reuse it across seeds)."""
    if len(texts) != len(labels) or not texts:
        raise ValueError("finetune needs as many labels as texts, and at least one of each")
    if not set(labels) <= set(range(classifier.model.config.num_labels)):
        raise ValueError(f"labels must be class indices below {classifier.model.config.num_labels}")
    rng = random.Random(seed)
    torch.manual_seed(seed)  # dropout masks are then reproducible
    per_text = [classifier.windows(t) for t in texts]  # tokenised once
    flat = [w for ws in per_text for w in ws]  # every text's windows, in order
    first = [0, *itertools.accumulate(map(len, per_text))]  # text i: flat[first[i]:first[i+1]]
    if features is not None and not freeze_layers:
        raise ValueError("features are the frozen layers' output; pass freeze_layers too")
    if freeze_layers:
        freeze_bottom(classifier.model, freeze_layers)
        if features is None:
            features = bottom_features(classifier, flat, freeze_layers)
        if len(features) != len(flat):
            raise ValueError(f"features holds {len(features)} windows, the texts {len(flat)}")
    per_epoch = -(-len(texts) // batch_size)
    steps = max(1, round(epochs * per_epoch))
    steps = min(steps, max_steps) if max_steps else steps
    order: list[int] = []

    def loss_of_step(step: int) -> Tensor:
        while len(order) < batch_size:  # one more shuffled pass over the data
            epoch = list(range(len(texts)))
            rng.shuffle(epoch)
            order.extend(epoch)
        rows = [order.pop() for _ in range(batch_size)]
        owner, picked = [], []  # picked: indices into the flat list of all windows
        for j, i in enumerate(rows):
            every = range(first[i], first[i + 1])
            chosen = [rng.choice(every)] if classifier.truncation == "chunks" else every
            owner += [j] * len(chosen)
            picked += chosen
        if features is not None:
            logits = top_logits(classifier.model, [features[w] for w in picked], freeze_layers)
        else:
            logits = classifier.logits([flat[w] for w in picked])
        logits = mean_by_text(logits.float(), owner, len(rows))  # [B, num_labels]
        target = torch.tensor([labels[i] for i in rows], device=logits.device)
        return F.cross_entropy(logits, target)

    losses = train_steps(classifier.model, loss_of_step, steps, lr,
                         warmup=max(1, steps // 10), log=log)
    classifier.model.requires_grad_(True)  # frozen for this run only
    return losses
