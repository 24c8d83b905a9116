"""Contrastive loss: equal to a hand computation and to sentence-transformers'
MultipleNegativesRankingLoss; a few Trainer steps on a tiny BERT reduce it."""

from __future__ import annotations

import math

import pytest
import torch

from lmstack.embed.contrastive import Contrastive, ContrastivePairs, info_nce
from lmstack.models.bert import BertConfig, BertModel
from lmstack.tokenizer.char_vocab import train_char_vocab
from lmstack.train.config import TrainConfig
from lmstack.train.trainer import Trainer


def by_hand(q, p, t, pairs_masked=()):
    """-log softmax of the diagonal, row by row, with plain floats."""
    q = [[x / math.sqrt(sum(v * v for v in row)) for x in row] for row in q.tolist()]
    p = [[x / math.sqrt(sum(v * v for v in row)) for x in row] for row in p.tolist()]
    total = 0.0
    for i, qi in enumerate(q):
        s = [sum(a * b for a, b in zip(qi, pj, strict=True)) / t for pj in p]
        keep = [j for j in range(len(p)) if (i, j) not in pairs_masked]
        total += -(s[i] - math.log(sum(math.exp(s[j]) for j in keep)))
    return total / len(q)


def test_info_nce_by_hand():
    torch.manual_seed(0)
    q, p = torch.randn(5, 7), torch.randn(5, 7)
    assert float(info_nce(q, p, 0.1)) == pytest.approx(by_hand(q, p, 0.1), rel=1e-5)
    sym = (by_hand(q, p, 0.1) + by_hand(p, q, 0.1)) / 2
    assert float(info_nce(q, p, 0.1, symmetric=True)) == pytest.approx(sym, rel=1e-5)
    # Pairs 1 and 3 share a passage: neither counts the other's copy as a negative.
    groups = torch.tensor([0, 1, 2, 1, 3])
    masked = by_hand(q, p, 0.1, pairs_masked={(1, 3), (3, 1)})
    assert float(info_nce(q, p, 0.1, groups=groups)) == pytest.approx(masked, rel=1e-5)


def test_matches_sentence_transformers():
    from sentence_transformers.sentence_transformer.losses import (
        MultipleNegativesRankingLoss as MNRL,
    )

    torch.manual_seed(1)
    q, p = torch.randn(8, 16), torch.randn(8, 16)
    one_way = MNRL(None, scale=20.0).compute_loss_from_embeddings([q, p], None)
    both = MNRL(None, scale=20.0, directions=("query_to_doc", "doc_to_query"),
                partition_mode="per_direction").compute_loss_from_embeddings([q, p], None)
    assert float(info_nce(q, p, 0.05)) == pytest.approx(float(one_way), rel=1e-5)
    assert float(info_nce(q, p, 0.05, symmetric=True)) == pytest.approx(float(both), rel=1e-5)
    # The deliberate break: positives off the diagonal (pairs shifted by one) disagree.
    assert float(info_nce(q, p.roll(1, 0), 0.05)) != pytest.approx(float(one_way), rel=1e-3)


PAIRS = [("猫", "猫吃鱼"), ("狗", "狗叫"), ("鸟", "鸟飞"), ("鱼", "鱼游"),
         ("cat", "cat eats fish"), ("dog", "dog barks"), ("bird", "birds fly"), ("fish", "fish swim")]


@pytest.fixture(scope="module")
def char_tokenizer(tmp_path_factory):
    return train_char_vocab((q + p for q, p in PAIRS), tmp_path_factory.mktemp("chars"))


def test_a_few_trainer_steps_reduce_the_loss(char_tokenizer, tmp_path):
    torch.manual_seed(0)
    encoder = BertModel(BertConfig(vocab_size=len(char_tokenizer), hidden_size=32,
                                   num_hidden_layers=2, num_attention_heads=4,
                                   intermediate_size=64, max_position_embeddings=64,
                                   hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0),
                        add_pooling_layer=False)
    data = ContrastivePairs(PAIRS, char_tokenizer, max_length=16)
    objective = Contrastive(temperature=0.1)
    everything = data.batch(range(len(PAIRS)))

    def loss():
        encoder.eval()
        with torch.no_grad():
            s, n = objective(encoder, everything)["contrastive"]
        return float(s / n)

    before = loss()
    config = TrainConfig.model_validate({
        "data": {"files": []},  # the pairs come from code, not files
        "optimizer": {"lr": 3e-3, "weight_decay": 0.0},
        "schedule": {"warmup_steps": 0},
        "training": {"out_dir": str(tmp_path), "max_steps": 30, "micro_batch_size": 8,
                     "device": "cpu", "progress": False, "log_every": 10, "eval_every": 1000,
                     "save_every": 1000}})
    Trainer(encoder, objective, data, config).fit()
    after = loss()
    assert before > 1.0 and after < 0.5 * before, (before, after)


def test_pairs_group_equal_passages(char_tokenizer):
    data = ContrastivePairs([("a", "x"), ("b", "y"), ("c", "x")], char_tokenizer)
    batch = data.batch([0, 1, 2])
    assert batch["groups"].tolist() == [0, 1, 0]
    assert batch["q_input_ids"].shape[0] == batch["p_input_ids"].shape[0] == 3
    # One character, one token, between [CLS] and [SEP]; unseen characters are [UNK].
    assert char_tokenizer.tokenize("猫吃鱼") == ["猫", "吃", "鱼"]
    assert char_tokenizer.tokenize("龙") == ["[UNK]"]
    with pytest.raises(ValueError, match="at least one"):
        ContrastivePairs([], char_tokenizer)
