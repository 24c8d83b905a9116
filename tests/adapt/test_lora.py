"""LoRA parity with Hugging Face PEFT: same adapter weights, same logits (PEFT's own tolerance,
1e-4); adapter folders cross both ways; merge changes nothing; lmstack's Trainer moves only the LoRA factors."""

from __future__ import annotations

import numpy as np
import peft
import pytest
import torch
import transformers

from lmstack import load
from lmstack.adapt import (
    LoRALinear,
    apply_lora,
    load_adapter,
    lora_layers,
    merge,
    merge_and_unload,
    parameter_counts,
    save_adapter,
    unmerge,
)
from lmstack.data import PackedSequences
from lmstack.train import Trainer, parse_config
from lmstack.train.objectives import CausalLM

TOL = {"atol": 1e-4, "rtol": 1e-4}
R, ALPHA = 4, 16  # alpha != r, so a wrong scaling shows


def peft_model(folder, use_rslora=False, targets=("q_proj", "v_proj")):
    """PEFT on a fresh copy of the base, with B made non-zero so the adapter matters."""
    torch.manual_seed(1)
    base = transformers.AutoModelForCausalLM.from_pretrained(folder)
    config = peft.LoraConfig(r=R, lora_alpha=ALPHA, target_modules=list(targets),
                             lora_dropout=0.0, use_rslora=use_rslora, task_type="CAUSAL_LM")
    model = peft.get_peft_model(base, config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    return model.eval()


def copy_from_peft(ours, theirs):
    """Our LoRA factors := PEFT's (their names carry the adapter name, 'default')."""
    params = dict(theirs.named_parameters())
    for name, layer in lora_layers(ours).items():
        for part in ("lora_A", "lora_B"):
            key = f"base_model.model.{name}.{part}.default.weight"
            getattr(layer, part).weight.data.copy_(params[key])


def logits(model, ids):
    with torch.no_grad():
        out = model(ids)
    return getattr(out, "logits", out)


@pytest.mark.parametrize("use_rslora", [False, True])
def test_logits_match_peft(folder, ids, use_rslora):
    theirs = peft_model(folder, use_rslora)
    ours = apply_lora(load(folder)[0], ("q_proj", "v_proj"), r=R, alpha=ALPHA,
                      use_rslora=use_rslora).eval()
    copy_from_peft(ours, theirs)
    base = logits(load(folder)[0], ids)
    got, want = logits(ours, ids), logits(theirs, ids)
    assert (want - base).abs().max() > 1e-2  # the adapter really moves the output
    torch.testing.assert_close(got, want, **TOL)
    assert parameter_counts(ours) == theirs.get_nb_trainable_parameters()


def test_deliberate_break_wrong_scaling_is_caught(folder, ids):
    """Scaling by alpha instead of alpha/r (a classic slip) must fail the parity check."""
    theirs = peft_model(folder)
    ours = apply_lora(load(folder)[0], r=R, alpha=ALPHA).eval()
    copy_from_peft(ours, theirs)
    for layer in lora_layers(ours).values():
        layer.scaling = ALPHA
    with pytest.raises(AssertionError):
        torch.testing.assert_close(logits(ours, ids), logits(theirs, ids), **TOL)


def test_peft_adapter_loads_here(folder, ids, tmp_path):
    theirs = peft_model(folder, targets=("q_proj", "k_proj", "v_proj", "o_proj", "down_proj"))
    theirs.save_pretrained(tmp_path)
    ours = load_adapter(load(folder)[0], tmp_path).eval()
    assert len(lora_layers(ours)) == 2 * 5
    torch.testing.assert_close(logits(ours, ids), logits(theirs, ids), **TOL)


def test_our_adapter_loads_in_peft(folder, ids, tmp_path):
    torch.manual_seed(2)
    ours = apply_lora(load(folder)[0], ("q_proj", "v_proj", "gate_proj"), r=R, alpha=ALPHA)
    with torch.no_grad():
        for layer in lora_layers(ours).values():
            layer.lora_B.weight.normal_(0, 0.5)
    save_adapter(ours.eval(), tmp_path / "adapter")
    assert not list((tmp_path / "adapter").glob(".*.tmp"))  # atomic writes leave no temp files
    base = transformers.AutoModelForCausalLM.from_pretrained(folder)
    theirs = peft.PeftModel.from_pretrained(base, tmp_path / "adapter").eval()
    torch.testing.assert_close(logits(theirs, ids), logits(ours, ids), **TOL)


def test_merge_equals_unmerged_and_unmerge_restores(folder, ids):
    ours = apply_lora(load(folder)[0], ("q_proj", "v_proj", "up_proj"), r=R, alpha=ALPHA).eval()
    with torch.no_grad():
        for layer in lora_layers(ours).values():
            layer.lora_B.weight.normal_(0, 0.5)
    q = ours.model.layers[0].self_attn.q_proj
    original = q.base_layer.weight.clone()
    unmerged = logits(ours, ids)
    merge(ours)
    assert q.merged and not torch.equal(q.base_layer.weight, original)
    torch.testing.assert_close(logits(ours, ids), unmerged, **TOL)
    unmerge(ours)
    torch.testing.assert_close(q.base_layer.weight, original, atol=1e-6, rtol=0)
    torch.testing.assert_close(logits(ours, ids), unmerged, **TOL)


def test_merge_and_unload_saves_a_plain_model_equal_to_peft(folder, ids, tmp_path):
    """Merged and unwrapped, our model saves as an ordinary HF folder that transformers loads
    with the logits PEFT's own merge_and_unload gives."""
    theirs = peft_model(folder)
    ours = apply_lora(load(folder)[0], r=R, alpha=ALPHA).eval()
    copy_from_peft(ours, theirs)
    merge_and_unload(ours)
    assert not lora_layers(ours) and all(p.requires_grad is False for p in ours.parameters())
    ours.save_pretrained(tmp_path / "merged")
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "merged").eval()
    want = logits(theirs.merge_and_unload(), ids)
    torch.testing.assert_close(logits(reloaded, ids), want, **TOL)
    torch.testing.assert_close(logits(ours, ids), want, **TOL)


def test_fresh_adapter_is_identity_and_freezes_base(folder, ids):
    model = load(folder)[0].eval()
    before = logits(model, ids)
    apply_lora(model, r=R, alpha=ALPHA)
    torch.testing.assert_close(logits(model, ids), before, atol=0, rtol=0)  # B starts at zero
    assert all(isinstance(m, LoRALinear) for m in lora_layers(model).values())
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    with pytest.raises(ValueError, match="matches"):
        apply_lora(load(folder)[0], ("no_such_layer",))


def test_trainer_steps_change_only_lora_parameters(folder, tmp_path):
    """lmstack's own Trainer, unchanged, fine-tunes a LoRA model: its optimizer takes only the
    parameters that want gradients, so the frozen base stays bit for bit as it was."""
    torch.manual_seed(4)
    model = apply_lora(load(folder)[0], ("q_proj", "v_proj"), r=R, alpha=ALPHA, dropout=0.1)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    tokens = np.tile(np.arange(1, 33), 40)  # a repeating pattern: easy to learn
    config = parse_config({
        "model": {"architecture": "LlamaForCausalLM", "init_from": str(folder)},
        "data": {"shards": str(tmp_path), "seq_len": 16}, "optimizer": {"lr": 1e-2},
        "schedule": {"warmup_steps": 0},
        "training": {"out_dir": str(tmp_path / "run"), "micro_batch_size": 8, "threads": 1,
                     "progress": False}})
    trainer = Trainer(model, CausalLM(), PackedSequences(tokens, 16), config)
    losses = [trainer.train_step()["loss"] for _ in range(8)]
    assert losses[-1] < losses[0]
    for name, p in model.named_parameters():
        changed = not torch.equal(p, before[name])
        assert changed == (".lora_A." in name or ".lora_B." in name), name
