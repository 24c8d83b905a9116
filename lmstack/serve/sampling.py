"""API sampling fields -> engine `SamplingParams`, and the context-length rules around them.

Follows the OpenAI API's defaults (temperature 1, top_p 1, max_tokens 16 for completions) and
its `context_length_exceeded` error; vLLM's conventions for top_k = -1 and stop_token_ids.
"""

from __future__ import annotations

from typing import Any

from lmstack.serve.errors import context_length_exceeded, invalid
from lmstack.serve.protocol import SamplingRequest
from lmstack.serve.registry import ModelEntry


def sampling_params(req: SamplingRequest, max_tokens: int, logprobs: int | None,
                    extra_stop_ids: list[int] = ()) -> Any:
    from lmstack.engine import SamplingParams

    stop_ids = list(dict.fromkeys([*(req.stop_token_ids or []), *extra_stop_ids]))
    try:
        return _build(SamplingParams, req, max_tokens, logprobs, stop_ids)
    except ValueError as exc:  # the engine's own range checks, should ours ever be looser
        raise invalid(str(exc)) from exc


def _build(SamplingParams: type, req: SamplingRequest, max_tokens: int, logprobs: int | None,
           stop_ids: list[int]) -> Any:
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=1.0 if req.temperature is None else req.temperature,
        top_p=1.0 if req.top_p is None else req.top_p,
        top_k=max(req.top_k or 0, 0),  # -1 (vLLM) and 0 both mean "no top-k"
        min_p=req.min_p or 0.0,
        repetition_penalty=req.repetition_penalty or 1.0,
        frequency_penalty=req.frequency_penalty or 0.0,
        presence_penalty=req.presence_penalty or 0.0,
        seed=req.seed,
        stop=list(req.stop or []),
        stop_token_ids=stop_ids,
        ignore_eos=req.ignore_eos,
        logprobs=logprobs,
    )


def check_token_ids(entry: ModelEntry, ids: list[int], param: str) -> list[int]:
    """Token-id prompts come straight from the client: an id past the embedding table would
    crash the model, so it is a 400 here."""
    bad = [i for i in ids if not 0 <= i < entry.vocab_size]
    if bad:
        raise invalid(f"token id {bad[0]} is outside this model's vocabulary "
                      f"(0..{entry.vocab_size - 1})", param)
    return ids


def resolve_max_tokens(entry: ModelEntry, prompt_lens: list[int], requested: int | None,
                       param: str = "max_tokens", prompt_param: str = "prompt") -> int:
    """The completion budget: the request's, or what is left of the context when unset.

    As OpenAI does, a prompt plus max_tokens that cannot fit is refused rather than silently
    cut short, so the client learns its request cannot be honoured.
    """
    limit = int(entry.max_model_len or 0)
    if requested is not None and requested > limit:
        raise invalid(f"max_tokens is {requested}, more than this model's whole context of "
                      f"{limit} tokens; ask for at most {limit} (minus the prompt).", param)
    longest = max(prompt_lens)
    if longest == 0:
        raise invalid("The prompt is empty; send at least one token of text.", prompt_param)
    if longest >= limit:
        raise context_length_exceeded(
            f"This model's maximum context length is {limit} tokens, but the prompt has "
            f"{longest} tokens. Shorten the prompt.", prompt_param)
    if requested is None:
        return limit - longest
    if longest + requested > limit:
        raise context_length_exceeded(
            f"This model's maximum context length is {limit} tokens. However, you requested "
            f"{longest + requested} tokens ({longest} in the prompt, {requested} for the "
            "completion). Shorten the prompt or lower max_tokens.", prompt_param)
    return requested
