"""Training objectives: next-token prediction (causal LM), BERT's masked LM (+ NSP), seq2seq,
and plain classification (one label per example, e.g. the CNN's digits).

Follows Radford et al. 2018 for the causal LM loss, Devlin et al. 2019 for MLM + NSP and
Raffel et al. 2020 (T5) for text-to-text.
Each objective returns loss *sums* with their counts, so the trainer can divide by the number
of targets in the whole (accumulated, all-rank) batch, as transformers' `num_items_in_batch`.
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmstack.data.mlm import IGNORE_INDEX
from lmstack.nn.moe import moe_aux_loss
from lmstack.nn.step_context import packed_step

Terms = dict[str, tuple[Tensor, Tensor]]  # name -> (summed loss, number of targets)
# Terms named so are logged and averaged like losses but not trained on (DPO's reward margin).
METRIC_PREFIX = "metric_"


def is_loss(term: str) -> bool:
    return not term.startswith(METRIC_PREFIX)


class Objective(Protocol):
    name: str

    def counts(self, batch: dict[str, Tensor]) -> dict[str, int]:
        """Targets per loss term, known before the forward pass (for exact normalisation)."""

    def __call__(self, model: nn.Module, batch: dict[str, Tensor]) -> Terms:
        """Summed losses and counts for one micro-batch."""

    def input_tokens(self, batch: dict[str, Tensor]) -> int:
        """Tokens the model reads for this batch (what tokens/s counts)."""


def _token_ce_sum(logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor]:
    # float32 log-softmax even under bf16 autocast: the loss over a large vocab needs precision.
    loss = F.cross_entropy(logits.float().flatten(0, -2), targets.flatten(),
                           ignore_index=IGNORE_INDEX, reduction="sum")
    return loss, (targets != IGNORE_INDEX).sum()


class CausalLM:
    """Predict token t+1 from tokens <= t; batches hold windows of seq_len + 1 ids."""

    name = "causal_lm"

    def _split(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        ids = batch["input_ids"]
        targets = batch["labels"][:, 1:] if "labels" in batch else ids[:, 1:]
        return ids[:, :-1], targets

    def counts(self, batch: dict[str, Tensor]) -> dict[str, int]:
        return {"lm": int((self._split(batch)[1] != IGNORE_INDEX).sum())}

    def input_tokens(self, batch: dict[str, Tensor]) -> int:
        return self._split(batch)[0].numel()

    def __call__(self, model: nn.Module, batch: dict[str, Tensor]) -> Terms:
        inputs, targets = self._split(batch)
        loss, count = _token_ce_sum(model(inputs), targets)
        aux = moe_aux_loss(model)
        if aux is not None:
            # A mixture of experts' balancing loss rides on the lm term, times its target count
            # so the trainer's division leaves coef · aux added to the mean loss. Only training
            # forwards record it: validation loss and perplexity stay pure cross-entropy.
            loss = loss + aux * count
        return {"lm": (loss, count)}


class SupervisedFineTuning:
    """Next-token loss on the assistant's tokens only (labels are -100 elsewhere); rows may
    hold several packed examples, which attend only within themselves (segment_ids)."""

    name = "sft"

    def _split(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        return batch["input_ids"][:, :-1], batch["labels"][:, 1:], batch["segment_ids"][:, :-1]

    def counts(self, batch: dict[str, Tensor]) -> dict[str, int]:
        return {"lm": int((self._split(batch)[1] != IGNORE_INDEX).sum())}

    def input_tokens(self, batch: dict[str, Tensor]) -> int:
        return int((self._split(batch)[2] != 0).sum())

    def __call__(self, model: nn.Module, batch: dict[str, Tensor]) -> Terms:
        inputs, targets, segments = self._split(batch)  # [B, T] each
        logits = model(inputs, context=packed_step(segments))  # [B, T, vocab]
        return {"lm": _token_ce_sum(logits, targets)}


class MaskedLM:
    """Recover the selected tokens (labels != -100); with `nsp`, also classify B-follows-A."""

    def __init__(self, nsp: bool = False):
        self.nsp = nsp
        self.name = "mlm_nsp" if nsp else "mlm"

    def counts(self, batch: dict[str, Tensor]) -> dict[str, int]:
        out = {"lm": int((batch["labels"] != IGNORE_INDEX).sum())}
        if self.nsp:
            out["nsp"] = len(batch["next_sentence_label"])
        return out

    def input_tokens(self, batch: dict[str, Tensor]) -> int:
        mask = batch.get("attention_mask")
        return int(mask.sum()) if mask is not None else batch["input_ids"].numel()

    def __call__(self, model: nn.Module, batch: dict[str, Tensor]) -> Terms:
        out = model(batch["input_ids"], batch.get("attention_mask"), batch.get("token_type_ids"))
        if self.nsp:
            mlm_logits, nsp_logits = out
            nsp = F.cross_entropy(nsp_logits.float(), batch["next_sentence_label"],
                                  reduction="sum")
            terms = {"nsp": (nsp, torch.tensor(len(nsp_logits)))}
        else:
            mlm_logits, terms = (out[0] if isinstance(out, tuple) else out), {}
        return {"lm": _token_ce_sum(mlm_logits, batch["labels"]), **terms}


class Seq2SeqLM:
    """Text to text (T5): predict each target token from the whole input and the target's
    earlier tokens. Batches hold input_ids, attention_mask and labels (-100 = padding); the
    model shifts labels right into its decoder inputs (Raffel et al. 2020)."""

    name = "seq2seq"

    def counts(self, batch: dict[str, Tensor]) -> dict[str, int]:
        return {"lm": int((batch["labels"] != IGNORE_INDEX).sum())}

    def input_tokens(self, batch: dict[str, Tensor]) -> int:
        mask = batch.get("attention_mask")
        encoder = int(mask.sum()) if mask is not None else batch["input_ids"].numel()
        return encoder + batch["labels"].numel()  # the decoder reads one token per label

    def __call__(self, model: nn.Module, batch: dict[str, Tensor]) -> Terms:
        logits = model(batch["input_ids"], batch.get("attention_mask"), labels=batch["labels"])
        return {"lm": _token_ce_sum(logits, batch["labels"])}


class Classification:
    """One label per example (images, sentences): summed cross-entropy over the batch."""

    name = "classification"

    def __init__(self, inputs: str = "images"):
        self.inputs = inputs  # the batch key the model reads

    def counts(self, batch: dict[str, Tensor]) -> dict[str, int]:
        return {"ce": len(batch["labels"])}

    def input_tokens(self, batch: dict[str, Tensor]) -> int:
        return len(batch["labels"])  # examples: "tokens/s" reads as examples/s here

    def __call__(self, model: nn.Module, batch: dict[str, Tensor]) -> Terms:
        logits = model(batch[self.inputs])
        loss = F.cross_entropy(logits.float(), batch["labels"], reduction="sum")
        return {"ce": (loss, torch.tensor(len(logits)))}


def build_objective(name: str) -> Objective:
    if name == "causal_lm":
        return CausalLM()
    if name in ("mlm", "mlm_nsp"):
        return MaskedLM(nsp=name == "mlm_nsp")
    if name == "seq2seq":
        return Seq2SeqLM()
    raise ValueError(f"unknown objective {name!r}; use causal_lm, mlm, mlm_nsp or seq2seq")
