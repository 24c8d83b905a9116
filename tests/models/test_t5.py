"""T5 parity with transformers: both variants (ReLU, gated-GELU), a padded batch, greedy
decoding with and without the KV cache, our save read back by transformers, and a flipped
relative-position direction that the logits check catches."""

from __future__ import annotations

import os

import pytest
import torch
import transformers

import lmstack
from lmstack.models import T5ForConditionalGeneration, load_model
from lmstack.models import t5 as t5_module
from lmstack.models.t5_generate import generate_seq2seq

os.environ.setdefault("HF_HUB_OFFLINE", "1")

VARIANTS = {"relu": True, "gated-gelu": False}  # feed_forward_proj -> tie_word_embeddings


def _hf_folder(tmp_path, ff):
    torch.manual_seed(0)
    cfg = transformers.T5Config(
        vocab_size=60, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_heads=4,
        feed_forward_proj=ff, tie_word_embeddings=VARIANTS[ff], decoder_start_token_id=0,
        relative_attention_num_buckets=8, relative_attention_max_distance=16)
    hf = transformers.T5ForConditionalGeneration(cfg).eval()
    hf.save_pretrained(tmp_path / "hf")
    return hf, tmp_path / "hf"


def _batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(2, 60, (3, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0  # right padding, as T5's tokenizer pads
    mask[2, 4:] = 0
    dec = torch.randint(2, 60, (3, 9), generator=g)
    dec[:, 0] = 0  # decoder_start_token_id
    return ids.masked_fill(mask == 0, 0), mask, dec


@pytest.mark.parametrize("ff", list(VARIANTS))
def test_t5_matches_transformers(ff, tmp_path):
    hf, folder = _hf_folder(tmp_path, ff)
    ours = load_model(folder).eval()
    assert isinstance(ours, T5ForConditionalGeneration)
    ids, mask, dec = _batch()
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits
        got = ours(ids, mask, dec)
    assert (ref - got).abs().max().item() < 1e-4
    # Greedy decoding: the same tokens as transformers, with our cache and without it.
    want = hf.generate(input_ids=ids, attention_mask=mask, max_new_tokens=10, do_sample=False,
                       num_beams=1)
    cached = generate_seq2seq(ours, ids, 10, mask)
    uncached = generate_seq2seq(ours, ids, 10, mask, use_cache=False)
    assert cached.tolist() == want.tolist() == uncached.tolist()
    # ... and the way back: our folder loads in transformers and scores the same.
    ours.save_pretrained(tmp_path / "ours")
    back = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path / "ours").eval()
    with torch.no_grad():
        again = back(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits
    assert (again - ref).abs().max().item() < 1e-5


def test_t5_loads_through_lmstack_load(tmp_path):
    _, folder = _hf_folder(tmp_path, "relu")
    model, tokenizer = lmstack.load(folder)
    assert isinstance(model, T5ForConditionalGeneration) and tokenizer is None


def test_flipped_bucket_direction_is_caught(tmp_path, monkeypatch):
    """Measuring offsets query - key instead of key - query swaps the encoder's "before" and
    "after" buckets and breaks the decoder's causal ones: the parity check must notice."""
    hf, folder = _hf_folder(tmp_path, "gated-gelu")
    ours = load_model(folder).eval()
    ids, mask, dec = _batch()
    real = t5_module.relative_position_bucket
    monkeypatch.setattr(t5_module, "relative_position_bucket",
                        lambda rel, *a: real(-rel, *a))
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits
        got = ours(ids, mask, dec)
    assert (ref - got).abs().max().item() > 1e-3


def test_t5_trains_with_padded_targets():
    """Loss falls on a copy task in a few steps, and padding targets (-100) are ignored."""
    from lmstack.models.t5 import T5Config

    torch.manual_seed(0)
    model = T5ForConditionalGeneration(T5Config(vocab_size=20, d_model=32, d_kv=8, d_ff=64,
                                                num_layers=1, num_heads=4, dropout_rate=0.0))
    src = torch.randint(3, 20, (16, 6))
    labels = torch.cat([src, torch.ones(16, 1, dtype=torch.long)], 1)  # copy, then EOS
    labels[::2, -1] = -100
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        logits = model(src, labels=labels)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_untied_v1_1_folder_reads_in_transformers(tmp_path):
    """Real T5 v1.1 checkpoints keep a separate lm_head and no output rescaling: a model we
    build that way, saved, scores the same in transformers."""
    from lmstack.models.t5 import T5Config

    torch.manual_seed(0)
    ours = T5ForConditionalGeneration(T5Config(
        vocab_size=40, d_model=32, d_kv=8, d_ff=48, num_layers=2, num_heads=4,
        feed_forward_proj="gated-gelu", tie_word_embeddings=False)).eval()
    assert ours.lm_head.weight.data_ptr() != ours.shared.weight.data_ptr()
    ours.save_pretrained(tmp_path)
    hf = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path).eval()
    ids, mask, dec = (t.clamp(max=39) for t in _batch())
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask, decoder_input_ids=dec).logits
        got = ours(ids, mask, dec)
    assert (ref - got).abs().max().item() < 1e-4


def test_gradient_checkpointing_gives_the_same_gradients():
    from lmstack.models.t5 import T5Config

    torch.manual_seed(0)
    model = T5ForConditionalGeneration(T5Config(vocab_size=30, d_model=16, d_kv=4, d_ff=32,
                                                num_layers=2, num_heads=4, dropout_rate=0.0))
    ids, labels = torch.randint(2, 30, (2, 7)), torch.randint(2, 30, (2, 5))
    grads, calls = [], []
    model.decoder.block[0].register_forward_pre_hook(lambda *_: calls.append(1))
    for on in (False, True):
        model.set_gradient_checkpointing(on)
        model.zero_grad()
        calls.clear()
        model(ids, labels=labels).logsumexp(-1).sum().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
        assert len(calls) == (2 if on else 1)  # checkpointing re-runs the block in backward
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)
