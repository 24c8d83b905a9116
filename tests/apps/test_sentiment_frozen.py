"""The English recipe's parts on a tiny random encoder: the mean-pooling head against
sentence-transformers' mean pooling, frozen bottom layers cached and re-entered against the
whole model, a frozen fine-tune that moves only the top, and whole-review prediction from the
mean of the windows' logits, saved and reloaded with its pooling and cut."""

from __future__ import annotations

import pytest
import torch
from sentence_transformers.sentence_transformer.modules import Pooling

from lmstack.apps.sentiment import frozen
from lmstack.apps.sentiment.classifier import TextClassifier, classifier_from_encoder
from lmstack.apps.sentiment.finetune import finetune
from lmstack.apps.sentiment.zh_encoder import char_tokenizer, char_vocab
from lmstack.models import BertConfig, BertModel

TEXTS = ["a lovely, moving film " * 3, "dull and slow", "房间很干净，服务也好", "太吵了 " * 9]


def _classifier(pooling: str, truncation: str = "all_chunks") -> TextClassifier:
    torch.manual_seed(0)
    tokenizer = char_tokenizer(char_vocab(TEXTS * 2))
    encoder = BertModel(BertConfig(vocab_size=len(tokenizer), hidden_size=32,
                                   num_hidden_layers=3, num_attention_heads=2,
                                   intermediate_size=64, max_position_embeddings=64))
    model = classifier_from_encoder(encoder, ["negative", "positive"], pooling).eval()
    with torch.no_grad():  # off the init, whose tiny head makes every logit nearly alike
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return TextClassifier(model, tokenizer, max_length=16, truncation=truncation)


@pytest.fixture
def fp32(monkeypatch):
    """Frozen layers without bf16 autocast, so cached and whole passes agree to fp32."""
    monkeypatch.setattr(frozen, "bf16_pays", lambda device: False)


def _batch(clf: TextClassifier):
    windows = [w for text in TEXTS for w in clf.windows(text)]
    return windows, *clf.collate(windows)


def test_mean_pooling_head_reads_sentence_transformers_mean():
    clf = _classifier("mean")
    _, ids, mask = _batch(clf)
    assert mask.sum(1).min() < mask.shape[1]  # some windows are padded
    pooling = Pooling(32, "mean")
    with torch.no_grad():
        hidden, pooled = clf.model.bert(ids, mask)
        assert pooled is None and clf.model.bert.pooler is None  # no [CLS] pooler to train
        st = pooling({"token_embeddings": hidden, "attention_mask": mask})["sentence_embedding"]
        assert (clf.model.classifier(st) - clf.model(ids, mask)).abs().max() < 1e-5
        # The deliberate break: averaging the padding too gives other logits.
        padded = pooling({"token_embeddings": hidden,
                          "attention_mask": torch.ones_like(mask)})["sentence_embedding"]
        assert (clf.model.classifier(padded) - clf.model(ids, mask)).abs().max() > 1e-3


def test_bad_pooling_is_refused():
    with pytest.raises(ValueError, match="classifier_pooling must be one of cls, mean"):
        _classifier("max")


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_cached_bottom_then_top_equals_the_whole_model(fp32, pooling):
    clf = _classifier(pooling)
    windows, ids, mask = _batch(clf)
    with torch.no_grad():
        whole = clf.model(ids, mask)  # [W, 2]
        cached = frozen.top_logits(clf.model, frozen.bottom_features(clf, windows, 2), 2)
        assert (cached - whole).abs().max() < 1e-5
        # The deliberate break: features one layer short, entered above the frozen layers.
        short = frozen.top_logits(clf.model, frozen.bottom_features(clf, windows, 1), 2)
        assert (short - whole).abs().max() > 1e-3


def test_frozen_finetune_moves_only_the_top():
    clf = _classifier("mean")
    before = {k: v.clone() for k, v in clf.model.state_dict().items()}
    losses = finetune(clf, TEXTS, [1, 0, 1, 0], max_steps=3, batch_size=2, lr=1e-2,
                      freeze_layers=2)
    assert len(losses) == 3
    after = clf.model.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all(k.startswith(("bert.encoder.layer.2.", "classifier.")) for k in moved)
    assert "classifier.weight" in moved and "bert.encoder.layer.2.output.dense.weight" in moved
    assert all(p.requires_grad for p in clf.model.parameters())  # frozen for that run only
    with pytest.raises(ValueError, match="between 1 and 2"):
        finetune(clf, TEXTS, [1, 0, 1, 0], max_steps=1, freeze_layers=3)
    with pytest.raises(ValueError, match="pass freeze_layers too"):
        finetune(clf, TEXTS, [1, 0, 1, 0], max_steps=1, features=[])


def test_whole_review_is_the_mean_of_its_windows_logits(tmp_path):
    clf = _classifier("mean")
    finetune(clf, TEXTS, [1, 0, 1, 0], max_steps=2, batch_size=2, lr=1e-2)
    windows = clf.windows(TEXTS[0])
    assert len(windows) > 1
    with torch.no_grad():
        by_hand = clf.logits(windows).mean(0).softmax(-1)
    got = clf.predict_proba(TEXTS)
    assert abs(got[0] - by_hand.numpy()).max() < 1e-5
    chunks = TextClassifier(clf.model, clf.tokenizer, 16, "chunks")  # mean of probabilities
    with torch.no_grad():
        assert abs(chunks.predict_proba(TEXTS)[0]
                   - clf.logits(windows).softmax(-1).mean(0).numpy()).max() < 1e-5
    clf.save(tmp_path / "clf", corpus="movie_reviews", seed=0)
    again = TextClassifier.load(tmp_path / "clf")
    assert again.truncation == "all_chunks" and again.model.config.classifier_pooling == "mean"
    assert abs(again.predict_proba(TEXTS) - got).max() < 1e-6
