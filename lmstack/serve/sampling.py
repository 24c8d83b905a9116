"""API sampling fields -> engine `SamplingParams`, and the context-length rules around them.

Follows the OpenAI API's defaults (temperature 1, top_p 1, max_tokens 16 for completions) and
its `context_length_exceeded` error; vLLM's conventions for top_k = -1 and stop_token_ids.
"""

from __future__ import annotations

from typing import Any

from lmstack.serve.errors import context_length_exceeded, invalid
from lmstack.serve.protocol import SamplingRequest
from lmstack.serve.registry import ModelEntry


def sampling_params(req: SamplingRequest, entry: ModelEntry, max_tokens: int,
                    logprobs: int | None, extra_stop_ids: list[int] = (),
                    guided_json: dict | None = None) -> Any:
    """The engine's parameters, every number bounded here at the edge (top_k and token ids
    to the vocabulary, the seed to 63 bits) so that no client value can overflow a tensor."""
    from lmstack.engine import SamplingParams

    stop_ids = check_token_ids(entry, list(req.stop_token_ids or []), "stop_token_ids")
    stop_ids = list(dict.fromkeys([*stop_ids, *extra_stop_ids]))
    try:
        params = _build(SamplingParams, req, entry.vocab_size, max_tokens, logprobs, stop_ids)
        params.guided_json = guided_json
        return params
    except ValueError as exc:  # the engine's own range checks, should ours ever be looser
        raise invalid(str(exc)) from exc


def _build(SamplingParams: type, req: SamplingRequest, vocab: int, max_tokens: int,
           logprobs: int | None, stop_ids: list[int]) -> Any:
    top_k = req.top_k or 0
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=1.0 if req.temperature is None else req.temperature,
        top_p=1.0 if req.top_p is None else req.top_p,
        # -1 (vLLM) and 0 both mean "no top-k"; so does anything past the vocabulary.
        top_k=0 if top_k < 0 or top_k >= vocab else top_k,
        min_p=req.min_p or 0.0,
        repetition_penalty=req.repetition_penalty or 1.0,
        frequency_penalty=req.frequency_penalty or 0.0,
        presence_penalty=req.presence_penalty or 0.0,
        # torch generators take 64 bits; make_generation adds the choice index, so keep 63.
        seed=None if req.seed is None else req.seed % 2**63,
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


def check_prompt_chars(entry: ModelEntry, text: str, param: str = "prompt") -> str:
    """Refuse a text that cannot fit in the context before tokenizing it: no token holds more
    characters than the vocabulary's longest entry, so longer texts are too long for sure,
    and tokenizing megabytes only to refuse them would cost seconds of CPU."""
    limit = entry.max_model_len * entry.max_token_chars
    if len(text) > limit:
        raise context_length_exceeded(
            f"This model's maximum context length is {entry.max_model_len} tokens; a text of "
            f"{len(text)} characters cannot fit (at most {limit}). Shorten it.", param)
    return text
