"""The architecture registry: every name round-trips through a saved folder, GGUF-style lookup
by model_type, and family quirks (GPT-2's Conv1D layout) that hold for every class."""

from __future__ import annotations

import json

import pytest
import torch

from lmstack.models import GPT2Config, GPT2LMHeadModel, GPT2Model, load_model, registry, save_model

TINY = {
    "llama": {"vocab_size": 64, "hidden_size": 16, "intermediate_size": 32,
              "num_hidden_layers": 1, "num_attention_heads": 2, "max_position_embeddings": 32},
    "gpt2": {"vocab_size": 64, "n_embd": 16, "n_layer": 1, "n_head": 2, "n_positions": 32},
    "bert": {"vocab_size": 64, "hidden_size": 16, "intermediate_size": 32,
             "num_hidden_layers": 1, "num_attention_heads": 2, "max_position_embeddings": 32},
}
TINY["qwen2"] = TINY["mistral"] = TINY["llama"]
TINY["t5"] = {"vocab_size": 64, "d_model": 16, "d_kv": 8, "d_ff": 32, "num_layers": 1, "num_heads": 2}


@pytest.mark.parametrize("name", sorted(registry.ARCHITECTURES))
def test_every_architecture_saves_under_its_name_and_loads_as_its_class(name, tmp_path):
    arch = registry.architecture(name)
    model = arch.build(dict(TINY[arch.model_type]))
    assert registry.name_of(model) == name
    save_model(model, tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == [name]
    back = load_model(tmp_path)
    assert type(back) is arch.model_class and back.config.model_type == arch.model_type
    assert back.config.architectures == [name]


def test_model_type_lookup_builds_the_llama_family_for_qwen2():
    # What GGUF import does: its `general.architecture` is a model_type, not a class name.
    arch = registry.for_model_type("qwen2")
    assert arch.name == "Qwen2ForCausalLM" and arch.model_class.__name__ == "LlamaForCausalLM"
    assert registry.for_model_type("qwen2", head="Model").name == "Qwen2Model"
    with torch.device("meta"):
        model = arch.build(dict(TINY["qwen2"]))
    assert model.config.qkv_bias  # the Qwen2 flavour of the class, chosen by model_type
    with pytest.raises(registry.UnknownArchitecture, match="unknown model_type 'mamba'"):
        registry.for_model_type("mamba")


def test_a_bare_gpt2_backbone_loads_a_gpt2_lm_checkpoint(tmp_path):
    torch.manual_seed(0)
    lm = GPT2LMHeadModel(GPT2Config(**TINY["gpt2"])).eval()
    save_model(lm, tmp_path)  # Conv1D layout on disk: [in, out]
    backbone = GPT2Model.from_pretrained(tmp_path)
    ids = torch.randint(0, 64, (2, 7))
    with torch.no_grad():
        torch.testing.assert_close(backbone(ids), lm.transformer(ids), atol=0, rtol=0)
    # ... and a backbone saves the same layout an LM-head checkpoint has.
    save_model(backbone, tmp_path / "backbone")
    again = GPT2LMHeadModel.from_pretrained(tmp_path / "backbone")
    with torch.no_grad():
        torch.testing.assert_close(again.transformer(ids), lm.transformer(ids), atol=0, rtol=0)
