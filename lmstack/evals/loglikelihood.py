"""Log-likelihood of continuations given contexts, batched through a causal language model.

Follows lm-evaluation-harness (`HFLM._encode_pair` / `_loglikelihood_tokens`): the continuation
is scored as the *whole string* tokenizes it, context trailing spaces moving onto it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from lmstack.nn.kv_cache import StaticKVCache


def encode_pair(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """(context ids, continuation ids) the way the harness splits them.

    Tokenizing the two strings apart would give different tokens at the seam (BPE merges a
    leading space into the next word), so the continuation is the tail of the whole string's
    tokens past the context's own token count. Trailing spaces of the context belong to the
    continuation ("Answer: " + "Paris" is scored as "Answer:" + " Paris")."""
    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    if not context:  # nothing to condition on: the harness conditions on the prefix token
        prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else (
            tokenizer.eos_token_id)
        return [prefix], tokenizer.encode(continuation, add_special_tokens=False)
    whole = tokenizer.encode(context + continuation, add_special_tokens=False)
    context_ids = tokenizer.encode(context, add_special_tokens=False)
    return context_ids, whole[len(context_ids):]


def _score(logits: Tensor, cont: list[int]) -> tuple[float, bool]:
    """Summed log-probability of `cont` under logits [len(cont), vocab], and greedy-ness."""
    scores = torch.log_softmax(logits.float(), dim=-1)
    target = torch.tensor(cont, device=scores.device)
    picked = scores.gather(-1, target[:, None]).squeeze(-1)
    return float(picked.double().sum()), bool((scores.argmax(-1) == target).all())


def _logits(model: torch.nn.Module, x: Tensor) -> Tensor:
    out = model(x)
    return getattr(out, "logits", out)  # ours return logits; transformers' an output object


@torch.no_grad()
def _plain_loglikelihoods(
    model: torch.nn.Module,
    requests: Sequence[tuple[list[int], list[int]]],
    max_length: int,
    batch_tokens: int = 4096,
    on_progress: Callable[[int], None] | None = None,
) -> list[tuple[float, bool]]:
    """Every request padded into batches of whole sequences (works for any causal LM).

    Requests are sorted longest first and right-padded into batches of about `batch_tokens`
    tokens; a right pad never changes earlier positions under a causal mask. Inputs longer than
    `max_length` keep their last tokens (the harness truncates on the left)."""
    device = next(model.parameters()).device
    inputs = []
    for ctx, cont in requests:
        inputs.append((ctx + cont)[-(max_length + 1):][:-1])
    order = sorted(range(len(requests)), key=lambda i: -len(inputs[i]))
    results: list[tuple[float, bool] | None] = [None] * len(requests)
    model.eval()
    start = 0
    while start < len(order):
        longest = len(inputs[order[start]])
        size = max(1, batch_tokens // max(1, longest))
        batch = order[start:start + size]
        x = torch.zeros(len(batch), longest, dtype=torch.long)
        for row, i in enumerate(batch):
            x[row, :len(inputs[i])] = torch.tensor(inputs[i])
        logits = _logits(model, x.to(device))
        for row, i in enumerate(batch):
            cont = requests[i][1]
            end = len(inputs[i])  # the last input position predicts the last continuation token
            results[i] = _score(logits[row, end - len(cont):end], cont)
        start += len(batch)
        if on_progress:
            on_progress(len(batch))
    return results  # type: ignore[return-value]


def _can_share(model: torch.nn.Module) -> bool:
    """Our decoders take a step context (a KV cache); transformers' models do not."""
    cfg = getattr(model, "config", None)
    return (hasattr(cfg, "num_key_value_heads") and hasattr(cfg, "head_dim")
            and "context" in inspect.signature(model.forward).parameters)


@torch.no_grad()
def _shared_prefix(model: torch.nn.Module, context: list[int],
                   conts: list[list[int]]) -> list[tuple[float, bool]]:
    """The choices of one question, their common context run once: prefill it into a KV cache,
    copy the cache per choice, then run every continuation (right-padded) against it."""
    cfg, param = model.config, next(model.parameters())
    longest = max(len(c) for c in conts)
    cache = StaticKVCache(cfg.num_hidden_layers, 1, cfg.num_key_value_heads,
                          len(context) + longest, cfg.head_dim, param.dtype, param.device)
    ids = torch.tensor([context], device=param.device)
    positions = torch.arange(len(context), device=param.device)[None]
    first = model(ids, context=cache.step(positions), logits_to_keep=1)[0, -1]
    cache.advance(len(context))
    n = len(conts)
    cache.k, cache.v = (cache.k.expand(-1, n, -1, -1, -1).contiguous(),
                        cache.v.expand(-1, n, -1, -1, -1).contiguous())
    out = []
    if longest > 1:  # continuation tokens 0..-2 are inputs; they predict tokens 1..-1
        x = torch.zeros(n, longest - 1, dtype=torch.long, device=param.device)
        for row, c in enumerate(conts):
            x[row, :len(c) - 1] = torch.tensor(c[:-1])
        positions = (len(context) + torch.arange(longest - 1, device=param.device))[None]
        rest = model(x, context=cache.step(positions.expand(n, -1)))
    for row, c in enumerate(conts):
        logits = first[None] if len(c) == 1 else torch.cat([first[None], rest[row, :len(c) - 1]])
        out.append(_score(logits, c))
    return out


def loglikelihoods(
    model: torch.nn.Module,
    requests: Sequence[tuple[list[int], list[int]]],
    max_length: int | None = None,
    batch_tokens: int = 4096,
    on_progress: Callable[[int], None] | None = None,
    share_prefix: bool = True,
) -> list[tuple[float, bool]]:
    """For each (context ids, continuation ids): the summed log-probability of the continuation
    and whether greedy decoding would have produced it exactly (the harness's `is_greedy`).

    Requests with the same context (a question's choices) run that context once through a KV
    cache when the model takes one (`share_prefix`): the same numbers as scoring each whole
    sequence, about n_choices times less work for long few-shot prompts. Anything else, and
    inputs longer than `max_length` (truncated on the left as the harness does), is scored
    whole in padded batches."""
    max_length = max_length or getattr(getattr(model, "config", None),
                                       "max_position_embeddings", 2048)
    for _, cont in requests:
        if not cont:
            raise ValueError("a continuation tokenized to nothing; give a non-empty choice text")
    results: list[tuple[float, bool] | None] = [None] * len(requests)
    rest = list(range(len(requests)))
    if share_prefix and _can_share(model):
        model.eval()
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, (ctx, cont) in enumerate(requests):
            if len(ctx) + len(cont) - 1 <= max_length:
                groups.setdefault(tuple(ctx), []).append(i)
        for ctx, members in groups.items():
            scored = _shared_prefix(model, list(ctx), [requests[i][1] for i in members])
            for i, r in zip(members, scored, strict=True):
                results[i] = r
            if on_progress:
                on_progress(len(members))
        rest = [i for i, r in enumerate(results) if r is None]
    if rest:
        scored = _plain_loglikelihoods(model, [requests[i] for i in rest], max_length,
                                       batch_tokens, on_progress)
        for i, r in zip(rest, scored, strict=True):
            results[i] = r
    return results  # type: ignore[return-value]
