"""The paged engine serves a mixture-of-experts Llama: same greedy tokens as full recompute,
alone or batched with other requests (inference routes every token, so batching is moot)."""

from __future__ import annotations

from engine_helpers import naive_greedy, random_prompts, tiny_llama

from lmstack.engine import Engine, SamplingParams
from lmstack.nn.moe import MoEFeedForward


def test_engine_generates_from_a_moe_llama():
    model = tiny_llama(n_experts=4, experts_per_token=2)
    assert isinstance(model.model.layers[0].mlp, MoEFeedForward)
    prompts = random_prompts([6, 19, 3], seed=2)
    want = [naive_greedy(model, p, 24) for p in prompts]
    params = SamplingParams(max_tokens=24, temperature=0, ignore_eos=True)
    got = Engine(model, None, block_size=4, max_num_seqs=3).generate(prompts, params)
    assert [o.token_ids for o in got] == want
