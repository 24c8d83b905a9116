"""The step context seam: a decoder reads positions, mask and key/value storage only through
it, so a context written outside lmstack (here: a growing list per layer) drives any model."""

from __future__ import annotations

import pytest
import torch

from lmstack.models.gpt2 import GPT2Config, GPT2LMHeadModel
from lmstack.models.llama import LlamaConfig, LlamaForCausalLM
from lmstack.nn.attention import build_attention_mask
from lmstack.nn.kv_cache import StaticKVCache
from lmstack.nn.step_context import plain_step


class ListStore:
    """A cache no model knows about: keys and values kept as a list of chunks per layer."""

    def __init__(self):
        self.k: dict[int, list] = {}
        self.v: dict[int, list] = {}
        self.length = 0

    def step(self, n: int, batch: int) -> ListStep:
        return ListStep(self, n, batch)


class ListStep:
    def __init__(self, store: ListStore, n: int, batch: int):
        self.store, self.n = store, n
        self.positions = torch.arange(store.length, store.length + n).expand(batch, n)
        self.max_context = store.length + n

    def attention_mask(self, dtype, sliding_window=None):
        return build_attention_mask(None, self.n, self.max_context, True, dtype,
                                    sliding_window=sliding_window)

    def update(self, layer, k, v):
        self.store.k.setdefault(layer, []).append(k)
        self.store.v.setdefault(layer, []).append(v)
        return torch.cat(self.store.k[layer], 2), torch.cat(self.store.v[layer], 2)


MODELS = {
    "llama-window": lambda: LlamaForCausalLM(LlamaConfig(
        model_type="mistral", vocab_size=64, hidden_size=32, intermediate_size=64,
        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
        sliding_window=4, initializer_range=0.2)),
    "gpt2": lambda: GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=32, n_embd=32,
                                               n_layer=2, n_head=4, initializer_range=0.2)),
}


@pytest.fixture(params=sorted(MODELS))
def model(request):
    torch.manual_seed(0)
    return MODELS[request.param]().eval()


def test_a_foreign_context_drives_the_model_chunk_by_chunk(model):
    ids = torch.randint(0, 64, (2, 11))
    with torch.no_grad():
        full = model(ids)
        store, outs = ListStore(), []
        for start, end in [(0, 5), (5, 6), (6, 9), (9, 10), (10, 11)]:
            outs.append(model(ids[:, start:end], context=store.step(end - start, 2)))
            store.length = end  # the context's owner, not the model, advances it
    torch.testing.assert_close(torch.cat(outs, 1), full, atol=1e-5, rtol=1e-5)


def test_plain_step_is_the_default_and_a_static_cache_step_matches(model):
    ids = torch.randint(0, 64, (2, 9))
    mask = torch.ones_like(ids)
    mask[1, :3] = 0  # left padding
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    cfg = model.config
    cache = StaticKVCache(cfg.num_hidden_layers, 2, cfg.num_key_value_heads, 9, cfg.head_dim)
    with torch.no_grad():
        want = model(ids, mask, positions)
        assert torch.equal(model(ids, context=plain_step(ids, mask, positions)), want)
        got = model(ids, context=cache.step(positions, mask))
    torch.testing.assert_close(got, want)
    assert cache.length == 0  # the model never advances a cache itself


def test_gpt2_refuses_positions_past_its_table():
    torch.manual_seed(0)
    model = MODELS["gpt2"]().eval()
    store = ListStore()
    store.length = 30
    with pytest.raises(ValueError, match="33 tokens exceeds GPT-2's 32 learned positions"):
        model(torch.zeros(1, 3, dtype=torch.long), context=store.step(3, 1))


def test_a_context_and_hf_style_arguments_together_are_refused(model):
    ids = torch.zeros(1, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="not both"):
        model(ids, torch.ones_like(ids), context=plain_step(ids))
