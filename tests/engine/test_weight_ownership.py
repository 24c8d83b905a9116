"""The engine leaves a caller's model as it was given, unless told it may re-store the weights."""

from __future__ import annotations

import torch
from engine_helpers import random_prompts, tiny_llama

from lmstack.engine import Engine, SamplingParams

GREEDY = SamplingParams(max_tokens=8, temperature=0, ignore_eos=True)


def storage(model: torch.nn.Module) -> dict[str, tuple]:
    return {name: (p.data_ptr(), p.stride()) for name, p in model.named_parameters()}


def test_engine_does_not_rewrite_the_callers_weights():
    model = tiny_llama()
    before = storage(model)
    Engine(model, None).generate(random_prompts([5]), GREEDY)
    assert storage(model) == before


def test_column_major_is_opt_in_and_changes_no_output():
    prompts = random_prompts([5, 11])
    want = [o.token_ids for o in Engine(tiny_llama(), None).generate(prompts, GREEDY)]
    model = tiny_llama()
    engine = Engine(model, None, column_major=True)
    assert not model.lm_head.weight.is_contiguous()  # re-stored [in, out] in memory
    assert model.lm_head.weight.shape == (model.config.vocab_size, model.config.hidden_size)
    assert [o.token_ids for o in engine.generate(prompts, GREEDY)] == want


def test_packed_weights_keep_the_state_and_the_greedy_tokens():
    prompts = random_prompts([5, 11])
    bf16 = torch.bfloat16  # what packing applies to
    want = [o.token_ids for o in Engine(tiny_llama().to(bf16), None).generate(prompts, GREEDY)]
    model = tiny_llama().to(bf16)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    engine = Engine(model, None, packed_weights=True)
    assert model.lm_head.packed is not None or not torch.backends.mkldnn.is_available()
    assert [o.token_ids for o in engine.generate(prompts, GREEDY)] == want
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
