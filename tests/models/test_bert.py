"""BERT parity with transformers (every head, with an attention mask) and real MiniLM weights
against sentence-transformers."""

from __future__ import annotations

import os

import pytest
import torch
import transformers

from lmstack.models import BertModel, load_model, mean_pool

os.environ.setdefault("HF_HUB_OFFLINE", "1")

HEADS = ["BertModel", "BertForMaskedLM", "BertForPreTraining", "BertForNextSentencePrediction",
         "BertForSequenceClassification"]


def _hf_outputs(name, out):
    if name == "BertModel":
        return [out.last_hidden_state, out.pooler_output]
    if name == "BertForPreTraining":
        return [out.prediction_logits, out.seq_relationship_logits]
    return [out.logits]


@pytest.mark.parametrize("name", HEADS)
def test_bert_heads_match_transformers(name, tmp_path):
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=120, hidden_size=48, num_hidden_layers=2,
                                  num_attention_heads=4, intermediate_size=96,
                                  max_position_embeddings=64, num_labels=3)
    hf = getattr(transformers, name)(cfg).eval()
    with torch.no_grad():
        for p in hf.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    hf.save_pretrained(tmp_path)
    ours = load_model(tmp_path)
    assert type(ours).__name__ == name
    ids = torch.randint(0, 120, (3, 10))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 3:] = 0
    types = torch.zeros_like(ids)
    types[:, 5:] = 1
    with torch.no_grad():
        ref = _hf_outputs(name, hf(input_ids=ids, attention_mask=mask, token_type_ids=types))
        got = ours(ids, mask, types)
    got = list(got) if isinstance(got, tuple) else [got]
    for r, g in zip(ref, got, strict=True):
        if r.ndim == 3:  # per-token outputs: padded positions are undefined in both
            r, g = r[mask.bool()], g[mask.bool()]
        assert (r - g).abs().max().item() < 1e-4, name
    # ... and the way back
    ours.save_pretrained(tmp_path / "ours")
    back = getattr(transformers, name).from_pretrained(tmp_path / "ours").eval()
    with torch.no_grad():
        again = _hf_outputs(name, back(input_ids=ids, attention_mask=mask, token_type_ids=types))
    assert (again[-1] - ref[-1]).abs().max().item() < 1e-5


def test_masked_lm_loads_from_a_backbone_checkpoint(tmp_path):
    """Starting a fine-tune: a BertModel folder loads into a model with a fresh head."""
    from lmstack.models import BertConfig, BertForSequenceClassification

    cfg = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=32)
    BertModel(cfg).save_pretrained(tmp_path)
    model = BertForSequenceClassification.from_pretrained(tmp_path)
    assert not any(p.is_meta for p in model.parameters())
    assert model(torch.randint(0, 50, (2, 5))).shape == (2, 2)


SENTENCES = [
    "This is an example sentence", "Each sentence is converted", "The cat sits on the mat.",
    "A man is playing guitar.", "机器学习是人工智能的一个分支。", "I love pizza 🍕 and pasta!",
    "How do I reset my password?", "The weather is lovely today.", "Transformers use attention.",
    "Quantization shrinks models.", "KV caches speed up decoding.", "Paris is in France.",
    "The stock market fell sharply.", "She reads a book every week.", "Rust and Python differ.",
    "Embeddings map text to vectors.", "What's the capital of Japan?", "Tokyo is large.",
    "A quick brown fox jumps over the lazy dog near the river bank at dawn.", "ok",
]


def test_minilm_embeddings_match_sentence_transformers(minilm_folder):
    from sentence_transformers import SentenceTransformer

    ref = SentenceTransformer(str(minilm_folder), device="cpu").encode(
        SENTENCES, normalize_embeddings=True, convert_to_tensor=True)
    tok = transformers.AutoTokenizer.from_pretrained(str(minilm_folder))
    batch = tok(SENTENCES, padding=True, truncation=True, max_length=256, return_tensors="pt")
    model = load_model(minilm_folder)
    assert isinstance(model, BertModel)
    with torch.no_grad():
        hidden, _ = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])
    ours = mean_pool(hidden, batch["attention_mask"])
    cos = (ours * ref).sum(-1)
    assert cos.min().item() > 0.9999
    expected_start = torch.tensor([0.06766, 0.06350, 0.04871, 0.07930, 0.03745])
    assert torch.allclose(ours[0, :5], expected_start, atol=1e-4)
