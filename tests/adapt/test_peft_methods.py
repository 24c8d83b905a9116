"""DoRA, (IA)3, prompt tuning and prefix tuning against Hugging Face PEFT: PEFT's folders load
here and ours load in PEFT with the same logits (PEFT's tolerance, 1e-4), plus a deliberate
break each check catches; fresh adapters change nothing; training moves only the adapter."""

from __future__ import annotations

import numpy as np
import peft
import pytest
import torch
import transformers

from lmstack import load
from lmstack.adapt.dora import DoRALinear, apply_dora
from lmstack.adapt.ia3 import apply_ia3, ia3_layers
from lmstack.adapt.lora import lora_layers, merge, unmerge
from lmstack.adapt.peft_files import load_adapter, save_adapter
from lmstack.adapt.prefix import PrefixTuned
from lmstack.adapt.prompt import PromptTuned, as_prefix
from lmstack.data import PackedSequences
from lmstack.engine import Engine, SamplingParams
from lmstack.models.generate import generate
from lmstack.nn.kv_cache import StaticKVCache
from lmstack.train import Trainer, parse_config
from lmstack.train.objectives import CausalLM

TOL = {"atol": 1e-4, "rtol": 1e-4}
P = 3  # virtual tokens


CONFIGS = {
    "dora": lambda: peft.LoraConfig(r=4, lora_alpha=16, use_dora=True, task_type="CAUSAL_LM",
                                    target_modules=["q_proj", "v_proj", "down_proj"]),
    "ia3": lambda: peft.IA3Config(task_type="CAUSAL_LM"),
    "prompt": lambda: peft.PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=P),
    "prefix": lambda: peft.PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=P,
                                              prefix_projection=True, encoder_hidden_size=20),
}


def peft_model(folder, method):
    """PEFT's adapter with every adapter weight randomised, so it really moves the output."""
    torch.manual_seed(1)
    base = transformers.AutoModelForCausalLM.from_pretrained(folder)
    return nudge(peft.get_peft_model(base, CONFIGS[method]())).eval()


def nudge(model):
    """Every trainable (adapter) weight moved off its init, so the adapter changes outputs."""
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.5)
    return model


def logits(model, ids, mask=None):
    with torch.no_grad():
        out = model(ids, attention_mask=mask)
    out = getattr(out, "logits", out)
    if isinstance(model, peft.PeftModel) and model.active_peft_config.peft_type == "PROMPT_TUNING":
        out = out[:, P:]  # PEFT returns the soft prompt's positions too
    return out


def ours_of(folder, method):
    """A fresh lmstack adapter of each kind on the converted base, randomised like PEFT's."""
    torch.manual_seed(2)
    base = load(folder)[0]
    model = {"dora": lambda: apply_dora(base, ["q_proj", "v_proj", "down_proj"], r=4, alpha=16),
             "ia3": lambda: apply_ia3(base),
             "prompt": lambda: PromptTuned(base, P),
             "prefix": lambda: PrefixTuned(base, P, projection=True,
                                           encoder_hidden_size=20)}[method]()
    return nudge(model).eval()


@pytest.mark.parametrize("method", list(CONFIGS))
def test_peft_folder_loads_here(folder, ids, tmp_path, method):
    theirs = peft_model(folder, method)
    theirs.save_pretrained(tmp_path)
    ours = load_adapter(load(folder)[0], tmp_path).eval()
    want = logits(theirs, ids)
    assert (want - logits(load(folder)[0], ids)).abs().max() > 1e-2  # the adapter matters
    torch.testing.assert_close(logits(ours, ids), want, **TOL)
    mask = torch.ones_like(ids)
    mask[0, :3] = 0  # left padding goes through both masks the same way
    torch.testing.assert_close(logits(ours, ids, mask)[0, 3:],
                               logits(theirs, ids, mask)[0, 3:], **TOL)


@pytest.mark.parametrize("method", list(CONFIGS))
def test_our_folder_loads_in_peft(folder, ids, tmp_path, method):
    ours = ours_of(folder, method)
    save_adapter(ours, tmp_path / "adapter")
    base = transformers.AutoModelForCausalLM.from_pretrained(folder)
    theirs = peft.PeftModel.from_pretrained(base, tmp_path / "adapter").eval()
    torch.testing.assert_close(logits(theirs, ids), logits(ours, ids), **TOL)


def test_deliberate_breaks_are_caught(folder, ids, tmp_path):
    """A DoRA norm over the wrong axis and a prefix at positions 0.. (not P..) must fail."""
    theirs = peft_model(folder, "dora")
    theirs.save_pretrained(tmp_path / "dora")
    ours = load_adapter(load(folder)[0], tmp_path / "dora").eval()
    for layer in lora_layers(ours).values():
        layer.weight_norm = lambda self=layer: torch.linalg.norm(
            self.base_layer.weight + self.delta_weight(), dim=0).mean().expand(
                self.out_features)
    with pytest.raises(AssertionError):
        torch.testing.assert_close(logits(ours, ids), logits(theirs, ids), **TOL)
    theirs = peft_model(folder, "prefix")
    theirs.save_pretrained(tmp_path / "prefix")
    ours = load_adapter(load(folder)[0], tmp_path / "prefix").eval()
    from lmstack.adapt import prefix as module
    original = module.PrefixStep.__init__

    def unshifted(self, inner, prefix):
        original(self, inner, prefix)
        self.positions = inner.positions

    module.PrefixStep.__init__ = unshifted
    try:
        with pytest.raises(AssertionError):
            torch.testing.assert_close(logits(ours, ids), logits(theirs, ids), **TOL)
    finally:
        module.PrefixStep.__init__ = original


def test_dora_merge_equals_unmerged_and_unmerge_restores(folder, ids):
    ours = ours_of(folder, "dora")
    q = ours.model.layers[0].self_attn.q_proj
    assert isinstance(q, DoRALinear)
    original, unmerged = q.base_layer.weight.clone(), logits(ours, ids)
    merge(ours)
    torch.testing.assert_close(logits(ours, ids), unmerged, **TOL)
    unmerge(ours)
    torch.testing.assert_close(q.base_layer.weight, original, atol=1e-5, rtol=0)
    torch.testing.assert_close(logits(ours, ids), unmerged, **TOL)


@pytest.mark.parametrize("method", ["dora", "ia3"])
def test_fresh_adapter_is_identity(folder, ids, method):
    base = logits(load(folder)[0].eval(), ids)
    model = {"dora": lambda m: apply_dora(m, ["q_proj", "v_proj"]), "ia3": apply_ia3}[method](
        load(folder)[0].eval())
    torch.testing.assert_close(logits(model, ids), base, atol=1e-6, rtol=0)


@pytest.mark.parametrize("method", ["prompt", "prefix"])
def test_disabled_prompt_or_prefix_is_the_base(folder, ids, method):
    """A soft prompt or prefix cannot start as a no-op (any key shifts the softmax); switched
    off, the wrapper is the base model bit for bit."""
    model = ours_of(folder, method)
    assert not torch.allclose(logits(model, ids), logits(load(folder)[0], ids))
    model.enabled = False
    torch.testing.assert_close(logits(model, ids), logits(load(folder)[0], ids), atol=0, rtol=0)


@pytest.mark.parametrize("method", list(CONFIGS))
def test_training_moves_only_the_adapter(folder, method, train):
    model = ours_of(folder, method).train()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    train(model, torch.arange(1, 33).repeat(4, 1))
    for name, p in model.named_parameters():
        assert (p.grad is not None) == p.requires_grad, name
        assert torch.equal(p, before[name]) != p.requires_grad, name


def test_prefix_decodes_through_kv_caches_as_full_forward(folder):
    """Prefill then one token at a time through a StaticKVCache (what generate does) gives
    the full forward's logits; the paged engine, batching two prompts, its greedy tokens."""
    model = ours_of(folder, "prefix")
    model.prefix_encoder.freeze()
    seq = torch.randint(0, 96, (1, 12), generator=torch.Generator().manual_seed(5))
    full = logits(model, seq)
    cache = StaticKVCache(2, 1, 2, 12, 8)
    with torch.no_grad():
        steps = [model(seq[:, :6], context=cache.step(torch.arange(6)[None]))]
        cache.advance(6)
        for t in range(6, 12):
            steps.append(model(seq[:, t:t + 1], context=cache.step(torch.tensor([[t]]))))
            cache.advance(1)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, **TOL)
    prompts = [[5, 17, 3, 9, 40, 2], [7, 7, 1]]
    outs = Engine(model, None, block_size=4, max_num_seqs=4).generate(
        prompts, SamplingParams(max_tokens=6, temperature=0))
    for prompt, out in zip(prompts, outs, strict=True):
        assert out.token_ids == generate(model, torch.tensor([prompt]), 6)[0, len(prompt):].tolist()


def test_ia3_defaults_follow_peft(folder):
    model = apply_ia3(load(folder)[0])
    names = {n.split(".", 3)[-1] for n in ia3_layers(model)}
    assert names == {"self_attn.k_proj", "self_attn.v_proj", "mlp.down_proj"}
    assert [m.is_feedforward for m in ia3_layers(model).values()][:3] == [False, False, True]


def test_prompt_tuning_as_prefix_decodes_the_same(folder, ids):
    """A soft prompt's keys and values, computed once, are a prefix: as_prefix gives the
    prompt-tuned logits, and then decodes through generate's cache like any prefix; the
    prompt-tuned model itself decodes the same (recomputing them at each step)."""
    tuned = ours_of(folder, "prompt")
    prefix = as_prefix(tuned)
    torch.testing.assert_close(logits(prefix, ids), logits(tuned, ids), **TOL)
    out = generate(prefix, ids[:1, :5], max_new_tokens=5)
    assert torch.equal(logits(tuned, out)[:, 4:-1].argmax(-1), out[:, 5:])
    assert torch.equal(generate(tuned, ids[:1, :5], max_new_tokens=5), out)


@pytest.mark.parametrize("method", ["lora", "ia3", "prompt", "prefix"])
def test_gpt2_both_ways(gpt2_folder, ids, tmp_path, method):
    """GPT-2 (Conv1D, learned positions): LoRA on the fused c_attn (PEFT's fan_in_fan_out
    factors fit our nn.Linear as they are, and merge without a transpose), PEFT's IA3
    defaults (c_attn, mlp.c_proj), a soft prompt through wte + wpe, a prefix with positions
    from P: equal both ways."""
    torch.manual_seed(6)
    config = {"lora": lambda: peft.LoraConfig(r=4, lora_alpha=16, target_modules=["c_attn"],
                                              fan_in_fan_out=True, task_type="CAUSAL_LM"),
              "ia3": lambda: peft.IA3Config(task_type="CAUSAL_LM"),
              "prompt": lambda: peft.PromptTuningConfig(task_type="CAUSAL_LM",
                                                        num_virtual_tokens=P),
              "prefix": lambda: peft.PrefixTuningConfig(task_type="CAUSAL_LM",
                                                        num_virtual_tokens=P)}[method]()
    theirs = nudge(peft.get_peft_model(
        transformers.AutoModelForCausalLM.from_pretrained(gpt2_folder), config)).eval()
    theirs.save_pretrained(tmp_path / "theirs")
    ours = load_adapter(load(gpt2_folder)[0], tmp_path / "theirs").eval()
    want = logits(theirs, ids)
    torch.testing.assert_close(logits(ours, ids), want, **TOL)
    save_adapter(ours, tmp_path / "ours")
    back = peft.PeftModel.from_pretrained(
        transformers.AutoModelForCausalLM.from_pretrained(gpt2_folder), tmp_path / "ours")
    torch.testing.assert_close(logits(back.eval(), ids), want, **TOL)
    if method == "lora":
        assert back.peft_config["default"].fan_in_fan_out
        merge(ours)  # our weight is [out, in]: no transpose
        torch.testing.assert_close(logits(ours, ids), want, **TOL)
    if method == "ia3":  # mlp.c_proj, not c_proj: attention's c_proj stays unadapted
        assert set(back.peft_config["default"].target_modules) == {"c_attn", "mlp.c_proj"}


def test_trainer_checkpoints_a_prefix_as_a_peft_folder(folder, tmp_path, ids):
    """lmstack's Trainer runs a prefix-tuned model unchanged; its checkpoint holds the adapter
    as a PEFT folder, which loads back (here and in PEFT) with the trained logits."""
    model = PrefixTuned(load(folder)[0], P)
    config = parse_config({
        "model": {"architecture": "LlamaForCausalLM", "init_from": str(folder)},
        "data": {"shards": str(tmp_path), "seq_len": 16}, "schedule": {"warmup_steps": 0},
        "training": {"out_dir": str(tmp_path / "run"), "micro_batch_size": 4, "threads": 1,
                     "progress": False}})
    trainer = Trainer(model, CausalLM(), PackedSequences(np.tile(np.arange(1, 33), 8), 16),
                      config)
    trainer.train_step()
    checkpoint = trainer.save_checkpoint()
    back = load_adapter(load(folder)[0], checkpoint)
    torch.testing.assert_close(logits(back.eval(), ids), logits(model.eval(), ids), atol=0, rtol=0)
    theirs = peft.PeftModel.from_pretrained(
        transformers.AutoModelForCausalLM.from_pretrained(folder), checkpoint).eval()
    torch.testing.assert_close(logits(theirs, ids), logits(model, ids), **TOL)
