"""The sentiment app's pieces against their references: the classification head against
transformers' BertForSequenceClassification, the scores against scikit-learn, the split."""

from __future__ import annotations

import pytest
import torch
import transformers

from lmstack.apps.sentiment.classifier import classifier_from_encoder
from lmstack.apps.sentiment.corpora import stratified_split
from lmstack.apps.sentiment.scores import accuracy, macro_f1
from lmstack.models import BertModel, load_model


@pytest.fixture(scope="module")
def tiny_pair(tmp_path_factory):
    """A random transformers BertForSequenceClassification (3 labels) and lmstack's load of
    its folder."""
    torch.manual_seed(0)
    cfg = transformers.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2,
                                  num_attention_heads=4, intermediate_size=64,
                                  max_position_embeddings=40, num_labels=3)
    hf = transformers.BertForSequenceClassification(cfg).eval()
    with torch.no_grad():  # move every weight off its init so nothing matches by accident
        for p in hf.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    folder = tmp_path_factory.mktemp("bert-cls")
    hf.save_pretrained(folder)
    return hf, load_model(folder).eval()


def _batch():
    ids = torch.randint(0, 99, (4, 12), generator=torch.Generator().manual_seed(1))
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    mask[3, 2:] = 0
    return ids, mask


def test_classification_logits_match_transformers(tiny_pair):
    hf, ours = tiny_pair
    ids, mask = _batch()
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask).logits
        got = ours(ids, mask)
    assert got.shape == (4, 3)
    assert (ref - got).abs().max().item() < 1e-5


def test_parity_catches_a_head_reading_the_wrong_token(tiny_pair):
    """The deliberate break: pool the second token instead of [CLS] and the logits part."""
    hf, ours = tiny_pair
    ids, mask = _batch()
    with torch.no_grad():
        ref = hf(input_ids=ids, attention_mask=mask).logits
        hidden, _ = ours.bert(ids, mask)
        wrong = ours.classifier(torch.tanh(ours.bert.pooler.dense(hidden[:, 1])))
    assert (ref - wrong).abs().max().item() > 1e-3


def test_head_on_a_pretrained_encoder_keeps_its_weights():
    torch.manual_seed(0)
    from lmstack.models import BertConfig

    encoder = BertModel(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1,
                                   num_attention_heads=2, intermediate_size=32,
                                   max_position_embeddings=32)).eval()
    model = classifier_from_encoder(encoder, ["neg", "neu", "pos"]).eval()
    assert model.config.num_labels == 3
    ids = torch.randint(0, 50, (2, 6))
    with torch.no_grad():
        assert torch.equal(model.bert(ids)[0], encoder(ids)[0])


def test_scores_match_scikit_learn():
    from sklearn.metrics import accuracy_score, f1_score

    gold = [0, 1, 1, 0, 1, 1, 0, 0, 1, 1]
    pred = [0, 1, 0, 0, 1, 1, 1, 0, 1, 0]
    assert accuracy(gold, pred) == pytest.approx(accuracy_score(gold, pred))
    assert macro_f1(gold, pred) == pytest.approx(f1_score(gold, pred, average="macro"))
    assert macro_f1(gold, [1] * 10) == pytest.approx(f1_score(gold, [1] * 10, average="macro"))


def test_split_is_seeded_stratified_and_disjoint():
    labels = [0] * 30 + [1] * 70
    train, test = stratified_split(labels, 0.2, seed=3)
    assert sorted(train + test) == list(range(100))
    assert sum(labels[i] for i in test) == 14 and len(test) == 20
    assert stratified_split(labels, 0.2, seed=3) == (train, test)
    assert stratified_split(labels, 0.2, seed=4)[1] != test
