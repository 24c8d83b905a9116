"""Several LoRA adapters on one base: each, switched per call, matches PEFT with that adapter
active; disabled it is the base; a batch mixing adapters row by row (punica-style gather)
gives each row its own adapter's logits; weighted combinations and merges match PEFT."""

from __future__ import annotations

import peft
import pytest
import torch
import transformers

from lmstack import load
from lmstack.adapt.multi_lora import load_adapters

TOL = {"atol": 1e-4, "rtol": 1e-4}


@pytest.fixture(scope="module")
def adapters(folder, tmp_path_factory):
    """Two PEFT LoRA folders of different ranks and targets, B randomised so each matters."""
    root = tmp_path_factory.mktemp("adapters")
    for i, (name, r, targets) in enumerate([("a", 4, ["q_proj", "v_proj"]),
                                            ("b", 2, ["v_proj", "down_proj"]),
                                            ("c", 4, ["q_proj", "v_proj"])]):
        torch.manual_seed(10 + i)
        model = peft.get_peft_model(
            transformers.AutoModelForCausalLM.from_pretrained(folder),
            peft.LoraConfig(r=r, lora_alpha=8, target_modules=targets, task_type="CAUSAL_LM"))
        with torch.no_grad():
            for n, p in model.named_parameters():
                if "lora_B" in n:
                    p.normal_(0, 0.5)
        model.save_pretrained(root / name)
    return root


def peft_multi(folder, adapters, names=("a", "b", "c")):
    base = transformers.AutoModelForCausalLM.from_pretrained(folder)
    model = peft.PeftModel.from_pretrained(base, adapters / names[0], adapter_name=names[0])
    for name in names[1:]:
        model.load_adapter(adapters / name, adapter_name=name)
    return model.eval()


def logits(model, ids):
    with torch.no_grad():
        out = model(ids)
    return getattr(out, "logits", out)


def test_switching_adapters_matches_peft_and_disable_is_the_base(folder, adapters, ids):
    theirs = peft_multi(folder, adapters)
    ours = load_adapters(load(folder)[0].eval(), [(n, adapters / n) for n in "abc"])
    outputs = {}
    for name in "ab":
        theirs.set_adapter(name)
        ours.set_adapter(name)
        outputs[name] = logits(ours.model, ids)
        torch.testing.assert_close(outputs[name], logits(theirs, ids), **TOL)
    assert (outputs["a"] - outputs["b"]).abs().max() > 1e-2
    base = logits(load(folder)[0], ids)
    with ours.disable_adapters():
        torch.testing.assert_close(logits(ours.model, ids), base, atol=0, rtol=0)
    torch.testing.assert_close(logits(ours.model, ids), outputs["b"], atol=0, rtol=0)
    with pytest.raises(KeyError, match="unknown adapter"):
        ours.set_adapter("nope")


def test_rows_with_different_adapters_share_one_pass(folder, adapters, ids):
    """Each row of a mixed batch = that row alone with its adapter = PEFT's adapter_names."""
    ours = load_adapters(load(folder)[0].eval(), [(n, adapters / n) for n in "abc"])
    batch = ids[[0, 1, 0, 1]]
    alone = []
    for row, name in enumerate(["a", "b", None, "c"]):
        ours.set_adapter(name)
        alone.append(logits(ours.model, batch[row:row + 1]))
    assert ours.select_rows([0, 1, -1, 2])  # a mixed batch: the gathered path
    mixed = logits(ours.model, batch)
    torch.testing.assert_close(mixed, torch.cat(alone), **TOL)
    theirs = peft_multi(folder, adapters)  # PEFT's own mixed batches: adapter_names per row
    with torch.no_grad():
        want = theirs(batch, adapter_names=["a", "b", "__base__", "c"]).logits
    torch.testing.assert_close(mixed, want, **TOL)
    ours.select_rows([1, 0, -1, 2])  # deliberate break: two rows' adapters swapped
    with pytest.raises(AssertionError):
        torch.testing.assert_close(logits(ours.model, batch), torch.cat(alone), **TOL)


def test_weighted_adapter_matches_peft(folder, adapters, ids):
    theirs = peft_multi(folder, adapters)
    theirs.add_weighted_adapter(["a", "c"], [0.7, -0.4], "mix", combination_type="linear")
    theirs.set_adapter("mix")
    ours = load_adapters(load(folder)[0].eval(), [(n, adapters / n) for n in "abc"])
    ours.add_weighted_adapter(["a", "c"], [0.7, -0.4], "mix")
    ours.set_adapter("mix")
    torch.testing.assert_close(logits(ours.model, ids), logits(theirs, ids), **TOL)
    ours.add_weighted_adapter(["a", "b"], [0.5, 2.0], "sum", combination_type="cat")
    layer = ours.layers()["model.layers.0.self_attn.v_proj"]
    want = 0.5 * layer.delta_weight("a") + 2.0 * layer.delta_weight("b")
    torch.testing.assert_close(layer.delta_weight("sum"), want, atol=1e-6, rtol=0)


def test_merge_and_unload_one_adapter(folder, adapters, ids):
    ours = load_adapters(load(folder)[0].eval(), [(n, adapters / n) for n in "abc"])
    ours.set_adapter("b")
    want = logits(ours.model, ids)
    model = ours.merge_and_unload("b")
    assert not any(type(m).__name__ == "MultiLoRALinear" for m in model.modules())
    torch.testing.assert_close(logits(model, ids), want, **TOL)
