"""The Embedder on real all-MiniLM-L6-v2 weights against sentence-transformers."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from lmstack.embed import Embedder

SENTENCES = [
    "This is an example sentence",
    "A quick brown fox jumps over the lazy dog near the river bank at dawn, twice.",
    "ok",
    "Embeddings map text to vectors.",
    "向量检索把文本变成向量。",
    "The stock market fell sharply on Monday after the announcement.",
    "Rust and Python differ.",
]


@pytest.fixture(scope="module")
def reference(minilm_folder):
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(minilm_folder), device="cpu")
    return st.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True)


@pytest.fixture(scope="module")
def embedder(minilm_folder):
    # batch_size 3: several length-sorted batches, so the order restoration is exercised.
    return Embedder.from_folder(minilm_folder, batch_size=3)


def test_folder_settings_are_read(embedder):
    assert (embedder.pooling, embedder.normalize, embedder.max_length) == ("mean", True, 256)


def test_matches_sentence_transformers(embedder, reference):
    ours = embedder.encode(SENTENCES)
    assert ours.shape == (len(SENTENCES), 384) and ours.dtype == np.float32
    cos = (ours * reference).sum(1)
    assert cos.min() >= 0.9999, cos
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(ours[0, :5], [0.06766, 0.06350, 0.04871, 0.07930, 0.03745],
                               atol=1e-4)


def test_batching_does_not_change_vectors(embedder):
    alone = np.stack([embedder.encode([s])[0] for s in SENTENCES[:3]])
    np.testing.assert_allclose(embedder.encode(SENTENCES[:3]), alone, atol=1e-5)


def test_cls_pooling_where_mean_is_configured_breaks_parity(embedder, reference):
    wrong = Embedder(embedder.encoder, embedder.tokenizer, pooling="cls", max_length=256)
    cos = (wrong.encode(SENTENCES) * reference).sum(1)
    assert cos.min() < 0.99, cos  # the parity test above would catch this mistake


def test_empty_input_and_bad_pooling(embedder):
    assert embedder.encode([]).shape == (0, 384)
    with pytest.raises(ValueError, match="pooling"):
        Embedder(embedder.encoder, embedder.tokenizer, pooling="max")


def test_bfloat16_stays_close_to_float32(embedder, reference):
    import copy

    import torch

    half = Embedder(copy.deepcopy(embedder.encoder), embedder.tokenizer, max_length=256,
                    dtype="bfloat16")
    assert next(half.encoder.parameters()).dtype == torch.bfloat16
    ours = half.encode(SENTENCES)
    assert ours.dtype == np.float32
    cos = (ours * reference).sum(1)
    assert cos.min() >= 0.999, cos


def test_auto_dtype_is_measured_and_bad_dtype_refused(embedder):
    import torch

    from lmstack.embed.embedder import fastest_dtype

    picked = fastest_dtype(384, 1536)
    assert picked in (torch.float32, torch.bfloat16)
    with pytest.raises(ValueError, match="dtype must be one of"):
        Embedder(embedder.encoder, embedder.tokenizer, dtype="int8")


def test_progress_bar_only_on_a_terminal(embedder, monkeypatch):
    from rich.progress import Progress

    steps = []
    monkeypatch.setattr(Progress, "advance", lambda self, task, n=1: steps.append(task))
    shown = Embedder(embedder.encoder, embedder.tokenizer, max_length=256, batch_size=3,
                     progress=True)
    shown.encode(SENTENCES)  # pytest's captured stderr is no terminal: no bar
    assert steps == []
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    np.testing.assert_allclose(shown.encode(SENTENCES), embedder.encode(SENTENCES), atol=1e-6)
    assert len(steps) == 3  # 7 sentences in batches of 3
