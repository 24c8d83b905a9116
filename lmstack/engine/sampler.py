"""Batched next-token sampling: penalties, temperature, top-k / top-p / min-p, seeds, logprobs.

Follows vLLM's sampler: filters in one sorted pass, and the exponential-race form of
multinomial sampling (argmax p / q with q ~ Exp(1)) so each request draws from its own stream.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lmstack.engine.params import SamplingParams


@dataclass
class SampleRow:
    """What the sampler needs to know about one sequence this step."""

    params: SamplingParams
    prompt_ids: list[int]
    output_ids: list[int]
    generator: torch.Generator | None  # None: draw from the sampler's shared stream


@dataclass
class SampleResult:
    token_ids: list[int]
    logprobs: list[tuple[float, list[tuple[int, float]]] | None]  # (chosen, top-n) per row


class Sampler:
    def __init__(self, vocab_size: int, device=None, seed: int | None = None):
        self.vocab_size = vocab_size
        self.device = device
        self.generator = torch.Generator(device=device or "cpu")
        self.generator.manual_seed(seed if seed is not None else torch.seed())

    def __call__(self, logits: Tensor, rows: list[SampleRow]) -> SampleResult:
        """logits [N, vocab] (any float dtype) for the N rows; returns one token per row."""
        logits = logits[:, : self.vocab_size].float()
        raw = logits
        want_logprobs = [r.params.logprobs is not None for r in rows]
        if all(r.params.greedy and not r.params.needs_penalties for r in rows):
            tokens = logits.argmax(-1)
        else:
            if any(r.params.needs_penalties for r in rows):
                logits = self._apply_penalties(logits.clone(), rows)
            tokens = self._sample(logits, rows)
        token_list = tokens.tolist()
        logprobs: list = [None] * len(rows)
        if any(want_logprobs):
            logprobs = self._logprobs(raw, token_list, rows)
        return SampleResult(token_list, logprobs)

    # ------------------------------------------------------------------ penalties
    def _apply_penalties(self, logits: Tensor, rows: list[SampleRow]) -> Tensor:
        n, vocab = logits.shape
        dev = logits.device

        def counts(seqs: list[list[int]]) -> Tensor:
            width = max(1, max(len(s) for s in seqs))
            ids = torch.tensor([s + [vocab] * (width - len(s)) for s in seqs], device=dev)
            c = torch.zeros(n, vocab + 1, device=dev)  # column `vocab` soaks up the padding
            return c.scatter_add_(1, ids, torch.ones_like(ids, dtype=c.dtype))[:, :vocab]

        out_counts = counts([r.output_ids for r in rows])
        rep = torch.tensor([r.params.repetition_penalty for r in rows], device=dev)[:, None]
        if (rep != 1).any():
            seen = (counts([r.prompt_ids for r in rows]) + out_counts) > 0
            # CTRL's penalty: shrink a seen token's logit toward zero from either side.
            penalised = torch.where(logits > 0, logits / rep, logits * rep)
            logits = torch.where(seen, penalised, logits)
        freq = torch.tensor([r.params.frequency_penalty for r in rows], device=dev)[:, None]
        pres = torch.tensor([r.params.presence_penalty for r in rows], device=dev)[:, None]
        return logits - freq * out_counts - pres * (out_counts > 0).to(logits.dtype)

    # ------------------------------------------------------------------ sampling
    def _sample(self, logits: Tensor, rows: list[SampleRow]) -> Tensor:
        dev = logits.device
        greedy_rows = torch.tensor([r.params.greedy for r in rows], device=dev)
        greedy_tokens = logits.argmax(-1)
        if greedy_rows.all():
            return greedy_tokens
        temps = torch.tensor([r.params.temperature or 1.0 for r in rows], device=dev)
        logits = logits / temps[:, None]
        if any(r.params.needs_filters for r in rows):
            logits = self._filter(logits, rows)
        probs = logits.softmax(-1)
        # Exponential race: argmax p_i / q_i with q_i ~ Exp(1) is a draw from p. Each seeded
        # request consumes exactly `vocab` numbers of its own generator per step, so its
        # samples do not depend on what else is in the batch.
        q = torch.empty_like(probs)
        shared = [i for i, r in enumerate(rows) if r.generator is None]
        if shared:
            q[shared] = torch.empty(len(shared), probs.shape[1], device=dev).exponential_(
                generator=self.generator)
        for i, r in enumerate(rows):
            if r.generator is not None:
                q[i].exponential_(generator=r.generator)
        # A draw of exactly 0 would turn a filtered-out token's 0 / 0 into NaN, which argmax
        # prefers; the clamp changes nothing else.
        sampled = (probs / q.clamp_(min=1e-20)).argmax(-1)
        return torch.where(greedy_rows, greedy_tokens, sampled)

    def _filter(self, logits: Tensor, rows: list[SampleRow]) -> Tensor:
        dev = logits.device
        vocab = logits.shape[1]
        top_k = torch.tensor([r.params.top_k or vocab for r in rows], device=dev)
        top_p = torch.tensor([r.params.top_p for r in rows], device=dev)
        min_p = torch.tensor([r.params.min_p for r in rows], device=dev)
        sorted_logits, order = logits.sort(-1, descending=True)
        rank = torch.arange(vocab, device=dev)[None, :]
        drop = rank >= top_k[:, None]
        probs = sorted_logits.softmax(-1)
        # top-p keeps the smallest prefix whose mass reaches p: drop a token when the mass
        # before it already does (so the most likely token always survives).
        drop |= (probs.cumsum(-1) - probs) >= top_p[:, None]
        drop |= probs < min_p[:, None] * probs[:, :1]
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        return torch.empty_like(logits).scatter_(1, order, sorted_logits)

    # ------------------------------------------------------------------ logprobs
    def _logprobs(self, raw: Tensor, tokens: list[int], rows: list[SampleRow]) -> list:
        """Log probabilities under the model's own distribution (before penalties and
        temperature), as vLLM and OpenAI report them."""
        idx = [i for i, r in enumerate(rows) if r.params.logprobs is not None]
        logp = raw[idx].log_softmax(-1)
        top_n = max(rows[i].params.logprobs for i in idx)
        chosen = logp.gather(1, torch.tensor([[tokens[i]] for i in idx], device=raw.device))
        top_vals, top_ids = logp.topk(max(top_n, 1), dim=-1)
        chosen, top_vals, top_ids = chosen[:, 0].tolist(), top_vals.tolist(), top_ids.tolist()
        out: list = [None] * len(rows)
        for j, i in enumerate(idx):
            n = rows[i].params.logprobs
            out[i] = (chosen[j], list(zip(top_ids[j][:n], top_vals[j][:n], strict=True)))
        return out
