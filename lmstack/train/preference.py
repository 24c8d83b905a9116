"""Preference objectives: DPO against a frozen reference (Rafailov et al. 2023, "Direct
Preference Optimization") and reference-free ORPO (Hong et al. 2024, "ORPO: Monolithic
Preference Optimization without Reference Model").

The losses follow TRL's DPOTrainer (loss_type "sigmoid") and ORPOTrainer; tests hold them to
TRL's on fixed log-probabilities. Rewards are beta * (policy - reference) log-probabilities;
their margin and how often the chosen reply wins are logged as metric terms.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmstack.data.mlm import IGNORE_INDEX
from lmstack.train.objectives import Terms


def token_logps(model: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """(log p of each labelled target [R, T], 0 elsewhere; the mask of labelled targets)."""
    inputs, targets = batch["input_ids"][:, :-1], batch["labels"][:, 1:]
    logits = model(inputs).float()  # [R, T, vocab]; right padding is invisible to causal rows
    logp = -F.cross_entropy(logits.transpose(1, 2), targets, ignore_index=IGNORE_INDEX,
                            reduction="none")  # [R, T], 0 where ignored
    return logp, targets != IGNORE_INDEX


def sequence_logps(model: nn.Module, batch: dict[str, Tensor]) -> Tensor:
    """Summed log-probability of each row's reply [R]."""
    return token_logps(model, batch)[0].sum(-1)


def dpo_loss(chosen: Tensor, rejected: Tensor, ref_chosen: Tensor, ref_rejected: Tensor,
             beta: float = 0.1) -> tuple[Tensor, Tensor, Tensor]:
    """(per-pair loss, chosen rewards, rejected rewards): -log sigmoid(beta * (chosen log-ratio -
    rejected log-ratio)), the log-ratios taken against the reference."""
    chosen_ratio, rejected_ratio = chosen - ref_chosen, rejected - ref_rejected
    losses = -F.logsigmoid(beta * (chosen_ratio - rejected_ratio))
    return losses, beta * chosen_ratio.detach(), beta * rejected_ratio.detach()


def log1mexp(x: Tensor) -> Tensor:
    """log(1 - exp(x)) for x < 0, without cancellation on either side of -ln 2."""
    return torch.where(x < -0.6931471805599453, torch.log1p(-torch.exp(x)),
                       torch.log(-torch.expm1(x)))


def odds_ratio_loss(chosen_mean: Tensor, rejected_mean: Tensor, beta: float = 0.1
                    ) -> tuple[Tensor, Tensor]:
    """(per-pair loss, log odds ratio) from per-token mean log-probabilities: the odds of a
    reply are p / (1 - p); the loss is -beta * log sigmoid(log(odds_chosen / odds_rejected))."""
    log_odds = (chosen_mean - rejected_mean) - (log1mexp(chosen_mean) - log1mexp(rejected_mean))
    return -beta * F.logsigmoid(log_odds), log_odds


class DPO:
    """DPO on pair batches (data/preference.py). The reference log-probabilities come from
    the batch (precomputed once: `precompute_reference`) or from a frozen `reference` model."""

    name = "dpo"

    def __init__(self, beta: float = 0.1, reference: nn.Module | None = None):
        self.beta, self.reference = beta, reference

    def counts(self, batch: dict[str, Tensor]) -> dict[str, int]:
        pairs = len(batch["input_ids"]) // 2
        return {"dpo": pairs, "metric_reward_margin": pairs, "metric_reward_accuracy": pairs}

    def input_tokens(self, batch: dict[str, Tensor]) -> int:
        return batch["input_ids"][:, :-1].numel()

    def __call__(self, model: nn.Module, batch: dict[str, Tensor]) -> Terms:
        logps = sequence_logps(model, batch)  # [2B]: chosen rows, then rejected rows
        if "reference_logps" in batch:
            ref = batch["reference_logps"]
        elif self.reference is not None:
            with torch.no_grad():
                ref = sequence_logps(self.reference, batch)
        else:
            raise ValueError("DPO needs a reference model or precomputed reference_logps")
        losses, chosen_r, rejected_r = dpo_loss(*logps.chunk(2), *ref.chunk(2), self.beta)
        n = torch.tensor(len(losses))
        return {"dpo": (losses.sum(), n),
                "metric_reward_margin": ((chosen_r - rejected_r).sum(), n),
                "metric_reward_accuracy": ((chosen_r > rejected_r).float().sum(), n)}


class ORPO:
    """ORPO: the SFT loss on the chosen reply plus beta times the odds-ratio loss; no reference."""

    name = "orpo"

    def __init__(self, beta: float = 0.1):
        self.beta = beta

    def counts(self, batch: dict[str, Tensor]) -> dict[str, int]:
        pairs = len(batch["input_ids"]) // 2
        chosen_targets = batch["labels"][:pairs, 1:] != IGNORE_INDEX
        return {"lm": int(chosen_targets.sum()), "orpo": pairs, "metric_log_odds": pairs}

    def input_tokens(self, batch: dict[str, Tensor]) -> int:
        return batch["input_ids"][:, :-1].numel()

    def __call__(self, model: nn.Module, batch: dict[str, Tensor]) -> Terms:
        logp, mask = token_logps(model, batch)  # [2B, T]
        mean = logp.sum(-1) / mask.sum(-1).clamp(min=1)
        chosen_mean, rejected_mean = mean.chunk(2)
        losses, log_odds = odds_ratio_loss(chosen_mean, rejected_mean, self.beta)
        pairs = len(losses)
        n = torch.tensor(pairs)
        return {"lm": (-logp[:pairs].sum(), mask[:pairs].sum()), "orpo": (losses.sum(), n),
                "metric_log_odds": (log_odds.detach().sum(), n)}


@torch.no_grad()
def precompute_reference(model: nn.Module, data, batch_size: int = 4) -> None:
    """Score every pair once with `model` as it is now (the reference: for LoRA, the base
    before training, since a fresh adapter changes nothing) into data.reference [N, 2]."""
    was_training = model.training
    model.eval()
    data.reference = None
    rows = []
    for lo in range(0, len(data), batch_size):
        idx = list(range(lo, min(lo + batch_size, len(data))))
        chosen, rejected = sequence_logps(model, data.batch(idx)).chunk(2)
        rows.append(torch.stack([chosen, rejected], dim=1))
    data.reference = torch.cat(rows).cpu()
    model.train(was_training)
