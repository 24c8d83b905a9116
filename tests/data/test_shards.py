"""Token shards: round trips for English and Chinese, dtype by vocab, split, JSONL, packing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from data_helpers import CHINESE, english_text

from lmstack.data import PackedSequences, TokenShards, prepare_shards, token_dtype
from lmstack.data.shards import read_documents
from lmstack.demo.corpus import find_shared_data


def _round_trip(tokenizer, path, tmp_path, **kwargs) -> tuple[TokenShards, TokenShards]:
    out = prepare_shards([path], tokenizer, tmp_path / "shards", show_progress=False, **kwargs)
    return TokenShards.open(out, "train"), TokenShards.open(out, "val")


@pytest.mark.parametrize("language", ["english", "chinese"])
def test_documents_round_trip(tokenizer, tmp_path, language):
    text = english_text(30_000) if language == "english" else CHINESE * 30
    path = tmp_path / "in.txt"
    path.write_text(text, encoding="utf-8")
    train, val = _round_trip(tokenizer, path, tmp_path, val_fraction=0.1)
    docs = [tokenizer.decode(d) for part in (train, val) for d in part.iter_documents()]
    assert docs == read_documents(path)
    assert "".join(docs).replace("\n\n", "") == text.replace("\n\n", "")
    assert val.num_tokens > 0 and train.num_tokens > 5 * val.num_tokens
    assert train.arrays[0].dtype == np.uint16
    # The validation split is the tail of the file, not a random sample.
    assert text.rstrip().endswith(tokenizer.decode(list(val.iter_documents())[-1]).rstrip())


def test_shared_chinese_poems_round_trip(tokenizer, tmp_path):
    data = find_shared_data()
    if data is None or not (data / "pretrain" / "tang_song_poems.txt").is_file():
        pytest.skip("../shared/data/pretrain/tang_song_poems.txt is not present")
    text = (data / "pretrain" / "tang_song_poems.txt").read_text(encoding="utf-8")[:50_000]
    path = tmp_path / "poems.txt"
    path.write_text(text, encoding="utf-8")
    train, val = _round_trip(tokenizer, path, tmp_path)
    docs = [tokenizer.decode(d) for part in (train, val) for d in part.iter_documents()]
    assert docs == read_documents(path)


def test_jsonl_input_and_small_shards(tokenizer, tmp_path):
    records = [{"text": f"记录 {i}: the quick brown fox {i}"} for i in range(200)]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n")
    train, val = _round_trip(tokenizer, path, tmp_path, val_fraction=0.1, shard_tokens=500)
    assert len(train.arrays) > 1  # rolled over into several shard files
    docs = [tokenizer.decode(d) for part in (train, val) for d in part.iter_documents()]
    assert docs == [r["text"] for r in records]
    assert len(list(val.iter_documents())) == 20


def test_bad_jsonl_names_the_line(tokenizer, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok"}\n{"body": "no text"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: .*'text'"):
        prepare_shards([path], tokenizer, tmp_path / "out", show_progress=False)
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_token_dtype_by_vocab_size():
    assert token_dtype(50_257) == np.uint16 and token_dtype(65_536) == np.uint16
    assert token_dtype(65_537) == np.uint32 and token_dtype(151_936) == np.uint32


def test_packing_windows_cover_every_token_once():
    stream = np.arange(103)
    packed = PackedSequences(stream, seq_len=10)
    assert len(packed) == 10
    windows = [packed[i] for i in range(len(packed))]
    assert all(len(w) == 11 for w in windows)
    targets = np.concatenate([w[1:] for w in windows])
    np.testing.assert_array_equal(targets, np.arange(1, 101))
    batch = packed.batch([0, 3])["input_ids"]
    assert tuple(batch.shape) == (2, 11) and int(batch[1, 0]) == 30
