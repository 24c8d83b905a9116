"""Tokenizer vs transformers.AutoTokenizer: the same ids, masks and type ids on the same folder.

Covers our own saved BPE, the real all-MiniLM-L6-v2 folder, a BERT folder with only vocab.txt
and a GPT-2 folder with only vocab.json + merges.txt.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tokenizers import decoders

from lmstack.tokenizer import Tokenizer, train_bpe

transformers = pytest.importorskip("transformers")

BATCH = [
    "Hello, world! Don't stop: it's 3.14.",
    "你好世界 🙂 Café naïve résumé [MASK] [cls] Straße",
    "short",
    "a " * 200,  # longer than the small max_length values below
]

# (kwargs) for __call__ on both sides; each one exercises a different padding/truncation path.
CALL_VARIANTS: list[dict[str, Any]] = [
    {},
    {"padding": True},
    {"padding": True, "padding_side": "left"},
    {"padding": True, "truncation": True, "max_length": 12},
    {"padding": "max_length", "truncation": True, "max_length": 16},
    {"max_length": 8},  # max_length alone truncates, as in transformers
    {"add_special_tokens": False, "padding": "longest"},
]


def assert_same_call(ours: Tokenizer, hf: Any, texts: Any, **kwargs: Any) -> None:
    mine = ours(texts, **kwargs)
    theirs = dict(hf(texts, **kwargs))
    assert list(mine) == list(theirs), kwargs  # same keys in the same order
    for key, value in theirs.items():
        assert mine[key] == value, (key, kwargs)


def unicode_batch(mixed_text: str) -> list[str]:
    return [mixed_text, *BATCH]


# ---------------------------------------------------------------------- our trained BPE
def test_save_then_load_gives_the_same_tokenizer(
    trained: Tokenizer, trained_folder: Path, mixed_text: str
) -> None:
    loaded = Tokenizer.from_folder(trained_folder)
    assert loaded.get_vocab() == trained.get_vocab()
    assert loaded.encode(mixed_text) == trained.encode(mixed_text)
    assert loaded.config.chat_template == trained.config.chat_template
    assert loaded.all_special_ids == trained.all_special_ids
    # atomic writes leave no temp files behind
    assert sorted(p.name for p in trained_folder.iterdir()) == [
        "tokenizer.json",
        "tokenizer_config.json",
    ]


def test_trained_bpe_matches_autotokenizer(
    trained: Tokenizer, trained_folder: Path, mixed_text: str
) -> None:
    hf = transformers.AutoTokenizer.from_pretrained(trained_folder)
    ids = trained.encode(mixed_text)
    assert len(ids) > 30  # a real, multi-token encoding
    assert hf.encode(mixed_text) == ids
    assert hf(mixed_text)["input_ids"] == ids
    assert hf.decode(ids) == trained.decode(ids) == mixed_text
    assert hf.decode(ids, skip_special_tokens=True) == trained.decode(ids, skip_special_tokens=True)
    assert (hf.vocab_size, len(hf)) == (trained.vocab_size, len(trained))
    assert hf.all_special_ids == trained.all_special_ids
    assert (hf.eos_token_id, hf.pad_token_id, hf.bos_token_id) == (
        trained.eos_token_id,
        trained.pad_token_id,
        trained.bos_token_id,
    )
    for kwargs in CALL_VARIANTS:
        assert_same_call(trained, hf, unicode_batch(mixed_text), **kwargs)


def test_bos_eos_template_survives_save_and_matches(
    corpus_file: Path, tmp_path: Path, mixed_text: str
) -> None:
    tok = train_bpe(
        [corpus_file],
        vocab_size=400,
        special_tokens=["<s>", "</s>"],
        bos_token="<s>",
        eos_token="</s>",
        show_progress=False,
    )
    tok.set_special_tokens_template(add_bos=True, add_eos=True)
    ids = tok.encode(mixed_text)
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id
    assert tok.add_bos_token and tok.add_eos_token
    hf = transformers.AutoTokenizer.from_pretrained(tok.save(tmp_path / "llama_like"))
    assert hf.encode(mixed_text) == ids
    assert Tokenizer.from_folder(tmp_path / "llama_like").encode(mixed_text) == ids


def test_tensors(trained: Tokenizer) -> None:
    pt = trained(["a b c", "a"], padding=True, return_tensors="pt")
    assert pt["input_ids"].dtype == torch.long and pt["input_ids"].shape[0] == 2
    assert pt["attention_mask"].tolist()[1][-1] == 0
    np_out = trained("a b c", return_tensors="np")
    assert isinstance(np_out["input_ids"], np.ndarray) and np_out["input_ids"].shape[0] == 1
    assert trained.decode(pt["input_ids"][0]) == "a b c"


# ---------------------------------------------------------------------- all-MiniLM-L6-v2
def test_minilm_folder_matches_autotokenizer(minilm_folder: Path, mixed_text: str) -> None:
    ours = Tokenizer.from_folder(minilm_folder)
    hf = transformers.AutoTokenizer.from_pretrained(minilm_folder)
    batch = unicode_batch(mixed_text)
    # The folder's tokenizer.json bakes in padding to 128; encode must not inherit that.
    assert len(ours.encode("hi")) == 3
    ids = ours.encode(BATCH[1])
    assert ids[0] == 101 and ids[-1] == 102 and 103 in ids  # [CLS] ... [MASK] ... [SEP]
    for kwargs in CALL_VARIANTS:
        assert_same_call(ours, hf, batch, **kwargs)
    out = ours(batch, padding=True)
    assert "token_type_ids" in out and set(map(len, out["input_ids"])) == {
        max(map(len, ours.encode_batch(batch)))
    }
    # sentence pairs: segment ids switch to 1 on the second sentence
    pair = ours(BATCH[0], BATCH[1])
    assert pair == dict(hf(BATCH[0], BATCH[1]))
    assert 1 in pair["token_type_ids"]
    for text in batch:
        hf_ids = hf(text)["input_ids"]
        assert ours.decode(hf_ids) == hf.decode(hf_ids)
        assert ours.decode(hf_ids, skip_special_tokens=True) == hf.decode(
            hf_ids, skip_special_tokens=True
        )
    assert ours.all_special_ids == hf.all_special_ids
    assert (ours.vocab_size, ours.pad_token_id, ours.cls_token_id) == (30522, 0, 101)
    assert ours.config.model_max_length == hf.model_max_length == 512


def test_minilm_truncates_to_model_max_length(minilm_folder: Path) -> None:
    ours = Tokenizer.from_folder(minilm_folder)
    hf = transformers.AutoTokenizer.from_pretrained(minilm_folder)
    long_text = "word " * 700
    mine = ours(long_text, truncation=True)
    assert len(mine["input_ids"]) == 512 and mine["input_ids"][-1] == 102
    assert mine == dict(hf(long_text, truncation=True))


# ---------------------------------------------------------------------- vocab.txt only
@pytest.mark.parametrize(("lowercase", "clean_up"), [(True, True), (False, False)])
def test_wordpiece_vocab_txt_folder_matches(
    tmp_path: Path, mixed_text: str, lowercase: bool, clean_up: bool
) -> None:
    # A small WordPiece vocabulary written by hand, with special tokens at unusual ids.
    words = ["hello", "world", "Hello", "tok", "##en", "##izer", "##s", "你", "好", "the", "[", "]"]
    vocab = ["[PAD]", "!", ",", ".", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, "ca", "##fe"]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    config = {
        "tokenizer_class": "BertTokenizer",
        "do_lower_case": lowercase,
        "clean_up_tokenization_spaces": clean_up,
    }
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")

    ours = Tokenizer.from_folder(tmp_path)
    hf = transformers.AutoTokenizer.from_pretrained(tmp_path)
    fast = transformers.BertTokenizerFast.from_pretrained(tmp_path)
    texts = ["Hello, world! tokenizers", "hello tokens [MASK] 你好 café", mixed_text]
    ids = ours.encode(texts[0])
    assert ids[0] == 5 and ids[-1] == 6  # [CLS]=5, [SEP]=6
    # lowercase decides whether "Hello" is looked up as "hello" (id 8) or as "Hello" (id 10)
    assert ids[1] == (8 if lowercase else 10)
    for kwargs in CALL_VARIANTS[:4]:
        assert_same_call(ours, hf, texts, **kwargs)
        assert_same_call(ours, fast, texts, **kwargs)
    assert ours(texts[0], texts[1]) == dict(hf(texts[0], texts[1]))
    assert ours.decode(ids) == hf.decode(ids)
    assert ours.decode(ids, skip_special_tokens=True).startswith(
        "hello, world!" if lowercase else "Hello, world!"
    )

    # Saving writes a tokenizer.json that transformers reads back to the same ids.
    saved = ours.save(tmp_path / "saved")
    again = transformers.AutoTokenizer.from_pretrained(saved)
    assert again(texts)["input_ids"] == ours(texts)["input_ids"]
    assert Tokenizer.from_folder(saved)(texts) == ours(texts)

    # The config's clean_up_tokenization_spaces acts on decoders that keep " ," (here a
    # WordPiece decoder without its own clean-up), exactly as in transformers.
    ours.backend.decoder = decoders.WordPiece(prefix="##", cleanup=False)
    ours.config.tokenizer_class = "PreTrainedTokenizerFast"  # load tokenizer.json as it is
    hf = transformers.AutoTokenizer.from_pretrained(ours.save(tmp_path / "no_cleanup"))
    ids = ours.encode("hello, world!", add_special_tokens=False)
    assert ours.decode(ids) == ("hello, world!" if clean_up else "hello , world !")
    assert ours.decode(ids) == hf.decode(ids)


def test_minilm_vocab_txt_alone_matches_its_tokenizer_json(
    tmp_path: Path, minilm_folder: Path, mixed_text: str
) -> None:
    # The same real vocabulary, but without tokenizer.json: we must rebuild the pipeline.
    for name in ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(minilm_folder / name, tmp_path / name)
    rebuilt = Tokenizer.from_folder(tmp_path)
    original = Tokenizer.from_folder(minilm_folder)
    hf = transformers.AutoTokenizer.from_pretrained(tmp_path)
    batch = unicode_batch(mixed_text)
    assert rebuilt(batch, padding=True) == original(batch, padding=True)
    assert_same_call(rebuilt, hf, batch, padding=True)


# ---------------------------------------------------------------------- vocab.json + merges.txt
@pytest.mark.parametrize("add_bos_token", [False, True])
def test_gpt2_vocab_json_folder_matches(
    trained: Tokenizer, tmp_path: Path, mixed_text: str, add_bos_token: bool
) -> None:
    # transformers v5 save_pretrained writes only tokenizer.json, so we take its config and
    # write vocab.json + merges.txt from the trained BPE model, then drop tokenizer.json.
    gpt2 = transformers.GPT2TokenizerFast.from_pretrained(trained.save(tmp_path / "src"))
    folder = tmp_path / "gpt2"
    gpt2.save_pretrained(folder)
    (folder / "tokenizer.json").unlink()
    trained.backend.model.save(str(folder))
    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["tokenizer_class"] == "GPT2Tokenizer"
    config["add_bos_token"] = add_bos_token
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    assert {"vocab.json", "merges.txt"} <= {p.name for p in folder.iterdir()}

    ours = Tokenizer.from_folder(folder)
    hf = transformers.AutoTokenizer.from_pretrained(folder)
    assert type(hf).__name__ == "GPT2Tokenizer"
    ids = ours.encode(mixed_text)
    # GPT2Tokenizer's default bos is <|endoftext|> (id 0)
    assert (ids[0] == 0) is add_bos_token
    expected = ([0] if add_bos_token else []) + trained.encode(mixed_text)
    assert ids == expected
    for kwargs in CALL_VARIANTS[:4]:
        assert_same_call(ours, hf, unicode_batch(mixed_text), **kwargs)
    assert ours.decode(ids, skip_special_tokens=True) == hf.decode(ids, skip_special_tokens=True)
