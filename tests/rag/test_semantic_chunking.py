"""Semantic chunking with a fake embedder whose topic is known: cuts land exactly where the topic
changes, the window distances equal a hand computation, spans are exact."""

from __future__ import annotations

import numpy as np
import pytest

from lmstack.rag.semantic import semantic_chunks, sentence_spans, window_distances

TOPICS = [("cat", "purr", "猫"), ("sql", "index", "表"), ("rain", "cloud", "雨")]

CATS = ["The cat sleeps.", "A cat can purr.", "My cat likes fish.", "Cats purr when happy."]
SQL = ["An index speeds up sql.", "Write sql with care.", "The index lives on disk.",
       "A sql join needs an index."]
RAIN = ["Rain falls from a cloud.", "A grey cloud brings rain.", "Rain stops by noon."]


def topic_counts(texts):
    """Per topic, how many of the text's sentences are about it: a perfect topic model."""
    def about(sentence, words):
        return any(w in sentence.lower() for w in words)

    return np.array([[sum(about(t[a:b], words) for a, b in sentence_spans(t)) for words in TOPICS]
                     for t in texts], dtype=np.float32) + 1e-3


def test_distances_by_hand():
    text = " ".join(CATS + SQL[:3])
    spans = sentence_spans(text)
    assert [text[a:b].strip() for a, b in spans] == CATS + SQL[:3]
    d = window_distances(text, spans, topic_counts)
    # Windows of 3 sentences: (3 cat) -> (2 cat, 1 sql) -> (1 cat, 2 sql) -> (3 sql).
    np.testing.assert_allclose(d[2:5], [1 - 2 / np.sqrt(5), 1 - 4 / 5, 1 - 2 / np.sqrt(5)],
                               atol=1e-3)


@pytest.mark.parametrize("sep", [" ", "\n"])
def test_cuts_where_the_topic_changes(sep):
    text = sep.join(CATS + SQL + RAIN)
    chunks = semantic_chunks(text, topic_counts, buffer=1, percentile=80)
    assert [c.text for c in chunks] == [sep.join(group) for group in (CATS, SQL, RAIN)]
    assert all(text[c.start:c.end] == c.text for c in chunks)


def test_one_change_at_the_default_95th_percentile_and_chinese_sentences():
    text = "猫在睡觉。猫喜欢鱼！小猫很可爱。我的猫会叫。这张表很大。表需要索引。建表要小心。表在磁盘上。"
    chunks = semantic_chunks(text, topic_counts)
    assert [c.text for c in chunks] == ["猫在睡觉。猫喜欢鱼！小猫很可爱。我的猫会叫。",
                                        "这张表很大。表需要索引。建表要小心。表在磁盘上。"]


def test_an_embedder_blind_to_topic_finds_no_boundary():
    # The deliberate break: an embedding that does not see the topic cannot place the cut.
    text = " ".join(CATS + SQL)
    chunks = semantic_chunks(text, lambda ts: np.ones((len(ts), 3)))
    assert [c.text for c in chunks] != [" ".join(CATS), " ".join(SQL)]


def test_short_text_and_bad_settings():
    assert [c.text for c in semantic_chunks("  One sentence only.  ", topic_counts)] == [
        "One sentence only."]
    assert semantic_chunks("", topic_counts) == []
    with pytest.raises(ValueError, match="percentile"):
        semantic_chunks("A. B.", topic_counts, percentile=120)
