"""Batched next-token sampling: penalties, temperature, top-k / top-p / min-p, seeds, logprobs.

Follows vLLM's sampler: filters in one sorted pass, and the exponential-race form of
multinomial sampling (argmax p / q with q ~ Exp(1)) so each request draws from its own stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

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
    # Per row: None, or why that row's parameters could not be sampled with (its token is -1).
    errors: list[str | None] = field(default_factory=list)


@dataclass(frozen=True)
class RowSettings:
    """One row's sampling numbers, checked and clamped in Python before any tensor is built,
    so a hostile value fails (or is bounded) for its own row and never for the batch."""

    temperature: float
    top_k: int
    top_p: float
    min_p: float
    repetition_penalty: float
    frequency_penalty: float
    presence_penalty: float

    @classmethod
    def of(cls, params: SamplingParams, vocab: int) -> RowSettings:
        numbers = [float(params.temperature), float(params.top_p), float(params.min_p),
                   float(params.repetition_penalty), float(params.frequency_penalty),
                   float(params.presence_penalty)]
        if not all(math.isfinite(x) for x in numbers):
            raise ValueError("sampling parameters must be finite numbers")
        temperature, top_p, min_p, rep, freq, pres = numbers
        if params.logprobs is not None and not 0 <= int(params.logprobs) <= min(20, vocab):
            raise ValueError(f"logprobs={params.logprobs!r} must be in [0, 20]")
        top_k = int(params.top_k or 0)
        # top_k past the vocabulary means "no limit"; clamping keeps it inside int64.
        top_k = vocab if top_k <= 0 or top_k > vocab else top_k
        return cls(1.0 if params.greedy else temperature, top_k, top_p, min_p, rep, freq, pres)


class Sampler:
    def __init__(self, vocab_size: int, device=None, seed: int | None = None):
        self.vocab_size = vocab_size
        self.device = device
        self.generator = torch.Generator(device=device or "cpu")
        self.generator.manual_seed(seed if seed is not None else torch.seed())

    def __call__(self, logits: Tensor, rows: list[SampleRow]) -> SampleResult:
        """logits [N, vocab] (any float dtype) for the N rows; returns one token per row.

        A row whose parameters cannot be used gets token -1 and an error; the others are
        sampled as if it were not there (the engine ends that one request alone)."""
        settings: list[RowSettings | None] = []
        errors: list[str | None] = []
        for r in rows:
            try:
                settings.append(RowSettings.of(r.params, self.vocab_size))
                errors.append(None)
            except (TypeError, ValueError, OverflowError) as exc:
                settings.append(None)
                errors.append(f"invalid sampling parameters: {exc}")
        good = [i for i, s in enumerate(settings) if s is not None]
        if len(good) == len(rows):
            result = self._sample_rows(logits, rows, settings)
            return SampleResult(result.token_ids, result.logprobs, errors)
        tokens, logprobs = [-1] * len(rows), [None] * len(rows)
        if good:
            part = self._sample_rows(logits[good], [rows[i] for i in good],
                                     [settings[i] for i in good])
            for j, i in enumerate(good):
                tokens[i], logprobs[i] = part.token_ids[j], part.logprobs[j]
        return SampleResult(tokens, logprobs, errors)

    def _sample_rows(self, logits: Tensor, rows: list[SampleRow],
                     settings: list[RowSettings]) -> SampleResult:
        logits = logits[:, : self.vocab_size].float()
        raw = logits
        want_logprobs = [r.params.logprobs is not None for r in rows]
        if all(r.params.greedy and not r.params.needs_penalties for r in rows):
            tokens = logits.argmax(-1)
        else:
            if any(r.params.needs_penalties for r in rows):
                logits = self._apply_penalties(logits.clone(), rows, settings)
            tokens = self._sample(logits, rows, settings)
        token_list = tokens.tolist()
        logprobs: list = [None] * len(rows)
        if any(want_logprobs):
            logprobs = self._logprobs(raw, token_list, rows)
        return SampleResult(token_list, logprobs)

    # ------------------------------------------------------------------ penalties
    def _apply_penalties(self, logits: Tensor, rows: list[SampleRow],
                         settings: list[RowSettings] | None = None) -> Tensor:
        n, vocab = logits.shape
        settings = settings or [RowSettings.of(r.params, vocab) for r in rows]
        dev = logits.device

        def counts(seqs: list[list[int]]) -> Tensor:
            width = max(1, max(len(s) for s in seqs))
            ids = torch.tensor([s + [vocab] * (width - len(s)) for s in seqs], device=dev)
            c = torch.zeros(n, vocab + 1, device=dev)  # column `vocab` soaks up the padding
            return c.scatter_add_(1, ids, torch.ones_like(ids, dtype=c.dtype))[:, :vocab]

        out_counts = counts([r.output_ids for r in rows])
        rep = torch.tensor([s.repetition_penalty for s in settings], device=dev)[:, None]
        if (rep != 1).any():
            seen = (counts([r.prompt_ids for r in rows]) + out_counts) > 0
            # CTRL's penalty: shrink a seen token's logit toward zero from either side.
            penalised = torch.where(logits > 0, logits / rep, logits * rep)
            logits = torch.where(seen, penalised, logits)
        freq = torch.tensor([s.frequency_penalty for s in settings], device=dev)[:, None]
        pres = torch.tensor([s.presence_penalty for s in settings], device=dev)[:, None]
        return logits - freq * out_counts - pres * (out_counts > 0).to(logits.dtype)

    # ------------------------------------------------------------------ sampling
    def _sample(self, logits: Tensor, rows: list[SampleRow],
                settings: list[RowSettings]) -> Tensor:
        dev = logits.device
        greedy_rows = torch.tensor([r.params.greedy for r in rows], device=dev)
        greedy_tokens = logits.argmax(-1)
        if greedy_rows.all():
            return greedy_tokens
        temps = torch.tensor([s.temperature for s in settings], device=dev)
        logits = logits / temps[:, None]
        if any(r.params.needs_filters for r in rows):
            logits = self._filter(logits, settings)
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

    def _filter(self, logits: Tensor, settings: list[RowSettings]) -> Tensor:
        dev = logits.device
        vocab = logits.shape[1]
        top_k = torch.tensor([s.top_k for s in settings], device=dev)
        top_p = torch.tensor([s.top_p for s in settings], device=dev)
        min_p = torch.tensor([s.min_p for s in settings], device=dev)
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
