"""Every model, backbones included, starts from the config's initializer_range (as in HF's
`_init_weights`), not from torch's per-layer defaults."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lmstack.models import registry

CONFIGS = {
    "LlamaModel": {"vocab_size": 512, "hidden_size": 64, "intermediate_size": 128,
                   "num_hidden_layers": 2, "num_attention_heads": 4},
    "GPT2Model": {"vocab_size": 512, "n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 64},
    "BertModel": {"vocab_size": 512, "hidden_size": 64, "intermediate_size": 128,
                  "num_hidden_layers": 2, "num_attention_heads": 4},
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_backbones_draw_weights_with_the_configured_std(name):
    torch.manual_seed(0)
    std = 0.005  # far from torch's defaults (N(0, 1) embeddings, ~0.07 for 64-wide Linears)
    model = registry.architecture(name).build({**CONFIGS[name], "initializer_range": std})
    for module_name, m in model.named_modules():
        if isinstance(m, nn.Linear | nn.Embedding):
            got = m.weight.std().item()
            assert abs(got - std) < 0.2 * std, (module_name, got)
        if isinstance(m, nn.Linear) and m.bias is not None:
            assert not m.bias.any(), module_name
