"""DPO equals TRL's DPOTrainer loss on fixed log-probabilities (1e-6), with a deliberate break
caught; ORPO equals a hand computation and TRL's odds_ratio_loss; distillation's KL is 0 for
identical teacher and student and positive otherwise; a DPO step on real pairs runs."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from lmstack.data.chat_records import read_records, to_preference
from lmstack.data.preference import PreferenceDataset
from lmstack.models.llama import LlamaConfig, LlamaForCausalLM
from lmstack.train.distill import Distillation, distillation_kl, layer_subset_student
from lmstack.train.preference import DPO, ORPO, dpo_loss, odds_ratio_loss, precompute_reference

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"
G = torch.Generator().manual_seed(0)
CHOSEN, REJECTED = -torch.rand(4, generator=G, dtype=torch.float64) * 40, \
    -torch.rand(4, generator=G, dtype=torch.float64) * 40
REF_CHOSEN, REF_REJECTED = CHOSEN + torch.randn(4, generator=G, dtype=torch.float64), \
    REJECTED + torch.randn(4, generator=G, dtype=torch.float64)
BETA = 0.1


@pytest.fixture(scope="module")
def train_tokenizer(tokenizer_dir):
    from lmstack.tokenizer import Tokenizer

    return Tokenizer.from_folder(tokenizer_dir)


def trl_dpo_loss(chosen, rejected, ref_chosen, ref_rejected, beta):
    """TRL's own DPOTrainer._compute_loss (loss_type sigmoid, precomputed reference log-probs)
    on a stand-in model whose per-token log-probs sum to the given sequence log-probs."""
    from trl import DPOTrainer

    logps = torch.cat([chosen, rejected])[:, None]  # [2B, 1]: one completion token per row
    outputs = SimpleNamespace(log_probs=logps, entropy=torch.zeros_like(logps),
                              mean_logits=torch.zeros_like(logps),
                              is_top1=torch.zeros_like(logps, dtype=torch.bool))
    inputs = {"input_ids": torch.zeros(len(logps), 2, dtype=torch.long),
              "attention_mask": torch.ones(len(logps), 2, dtype=torch.long),
              "completion_mask": torch.tensor([[0, 1]] * len(logps)),
              "ref_chosen_logps": ref_chosen, "ref_rejected_logps": ref_rejected}
    identity = SimpleNamespace(device="cpu", gather_for_metrics=lambda x: x, gather=lambda x: x)
    trainer = SimpleNamespace(
        model=SimpleNamespace(training=True), accelerator=identity, aux_loss_enabled=False,
        precompute_ref_logps=True, ld_alpha=None, f_divergence_type="reverse_kl",
        loss_types=["sigmoid"], loss_weights=[1.0], beta=beta, label_smoothing=0.0,
        use_weighting=False, _metrics={"train": defaultdict(list)}, _total_train_tokens=0,
        _tp_size=1)
    loss = DPOTrainer._compute_loss(trainer, lambda **kw: outputs, inputs, return_outputs=False)
    return loss, trainer._metrics["train"]


def test_dpo_loss_equals_trl():
    pytest.importorskip("trl")
    ours, chosen_r, rejected_r = dpo_loss(CHOSEN, REJECTED, REF_CHOSEN, REF_REJECTED, BETA)
    theirs, metrics = trl_dpo_loss(CHOSEN, REJECTED, REF_CHOSEN, REF_REJECTED, BETA)
    torch.testing.assert_close(ours.mean(), theirs, atol=1e-6, rtol=0)
    assert math.isclose((chosen_r - rejected_r).mean().item(), metrics["rewards/margins"][0],
                        abs_tol=1e-6)
    assert (chosen_r > rejected_r).double().mean().item() == metrics["rewards/accuracies"][0]
    # The break: the reference log-probs swapped between chosen and rejected.
    broken, _, _ = dpo_loss(CHOSEN, REJECTED, REF_REJECTED, REF_CHOSEN, BETA)
    assert abs(broken.mean().item() - theirs.item()) > 1e-3


def test_orpo_loss_by_hand_and_against_trl():
    chosen, rejected = torch.tensor([-0.2, -1.5, -0.9]), torch.tensor([-0.7, -0.4, -2.5])
    losses, log_odds = odds_ratio_loss(chosen, rejected, BETA)
    for c, r, loss, lo in zip(chosen.tolist(), rejected.tolist(), losses.tolist(),
                              log_odds.tolist(), strict=True):
        odds = (math.exp(c) / (1 - math.exp(c))) / (math.exp(r) / (1 - math.exp(r)))
        assert math.isclose(lo, math.log(odds), rel_tol=1e-5)
        assert math.isclose(loss, -BETA * math.log(1 / (1 + 1 / odds)), rel_tol=1e-5)
    trl_orpo = pytest.importorskip("trl.experimental.orpo.orpo_trainer")
    stub = SimpleNamespace(beta=BETA, accelerator=SimpleNamespace(device="cpu"))
    trl_losses, *_ = trl_orpo.ORPOTrainer.odds_ratio_loss(stub, chosen, rejected)
    torch.testing.assert_close(losses, -trl_losses, atol=1e-6, rtol=0)


def test_distillation_kl_is_zero_only_for_the_same_distribution():
    logits = torch.randn(2, 5, 50, generator=G)
    assert distillation_kl(logits, logits, 2.0).abs().max() < 1e-6
    other = logits + torch.randn(2, 5, 50, generator=G)
    kl = distillation_kl(other, logits, 2.0)
    assert (kl > 0).all()
    reference = torch.nn.functional.kl_div(torch.log_softmax(other / 2, -1),
                                           torch.log_softmax(logits / 2, -1),
                                           log_target=True, reduction="none").sum(-1) * 4
    torch.testing.assert_close(kl, reference, atol=1e-5, rtol=1e-5)


def tiny(vocab: int, layers: int = 4):
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=vocab, hidden_size=32, intermediate_size=64,
                                        num_hidden_layers=layers, num_attention_heads=4,
                                        num_key_value_heads=2, initializer_range=0.2))


def test_student_from_teacher_layers_and_distillation_term(train_tokenizer):
    from lmstack.data.chat_records import to_chat
    from lmstack.data.sft import SFTDataset, build_examples

    teacher = tiny(len(train_tokenizer))
    chats = [to_chat({"instruction": "Say hi", "output": "Hi there!"})]
    batch = SFTDataset(build_examples(train_tokenizer, chats, 64), 64).batch([0])
    same = Distillation(teacher, temperature=2.0)(tiny(len(train_tokenizer)), batch)["kd"]
    assert same[0].abs() < 1e-5 and same[1] > 0  # a student identical to its teacher
    student = layer_subset_student(teacher, 2)
    assert len(student.model.layers) == 2 and student.config.num_hidden_layers == 2
    kd, _ = Distillation(teacher, temperature=2.0)(student, batch)["kd"]
    assert kd > 0
    kd.backward()
    assert student.model.layers[0].self_attn.q_proj.weight.grad is not None
    assert all(p.grad is None for p in teacher.parameters())


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is not beside the repo")
def test_dpo_and_orpo_on_real_pairs(train_tokenizer):
    pairs = [to_preference(r) for r in read_records(SHARED / "preference/dpo_en_demo.json")[:4]]
    data = PreferenceDataset(train_tokenizer, pairs, max_len=96)
    model = tiny(len(train_tokenizer), layers=2)
    precompute_reference(model, data, batch_size=2)
    batch = data.batch([0, 1])
    terms = DPO(beta=BETA)(model, batch)
    # The policy is still the reference: every log-ratio is 0, so the loss is log 2.
    assert math.isclose(terms["dpo"][0].item() / 2, math.log(2), rel_tol=1e-5)
    with_model = DPO(beta=BETA, reference=tiny(len(train_tokenizer), layers=2))(
        model, {k: v for k, v in batch.items() if k != "reference_logps"})
    torch.testing.assert_close(with_model["dpo"][0], terms["dpo"][0])
    orpo = ORPO(beta=BETA)(model, batch)
    assert orpo["orpo"][0] > 0 and orpo["lm"][1] == (batch["labels"][:2, 1:] != -100).sum()
