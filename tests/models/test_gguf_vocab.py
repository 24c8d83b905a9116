"""Tokenizers from GGUF metadata beyond SmolLM2's: a SentencePiece-style ('llama') vocabulary
written with the `gguf` writer, id for id against transformers' GGUF tokenizer; clear errors."""

from __future__ import annotations

import inspect

import pytest
from gguf import GGUFWriter, TokenType
from tokenizers import Tokenizer as Backend
from tokenizers import models, pre_tokenizers, trainers

from lmstack.tokenizer import TokenizerError
from lmstack.tokenizer.gguf_vocab import (
    gguf_tokenizer_metadata,
    merges_from_scores,
    tokenizer_from_gguf,
)

TEXTS = ["Hello world, the theory of the thing.", "  two spaces and\nnew lines\tand tabs",
         "naïve café 你好 🤗", "x = f(a, b)  # done", ""]


def sentencepiece_vocab() -> tuple[list[str], list[float], list[int]]:
    """<unk> <s> </s>, 256 byte tokens, then pieces learned on docstrings, scored by rank."""
    backend = Backend(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    docs = [inspect.getdoc(o) or "" for o in (dict, list, str, int, Backend)]
    backend.train_from_iterator(docs, trainers.BpeTrainer(vocab_size=400, show_progress=False))
    pieces = sorted(backend.get_vocab(), key=backend.get_vocab().get)
    tokens = ["<unk>", "<s>", "</s>", *(f"<0x{b:02X}>" for b in range(256)), *pieces]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL,
             *[TokenType.BYTE] * 256, *[TokenType.NORMAL] * len(pieces)]
    scores = [0.0] * 259 + [-float(i) for i in range(len(pieces))]
    return tokens, scores, [int(t) for t in types]


def vocabulary_writer(path, vocab_size: int) -> GGUFWriter:
    """A GGUFWriter holding a tiny Llama's hyper-parameters, for the vocabulary to go beside."""
    w = GGUFWriter(path, "llama")
    for add, value in ((w.add_block_count, 1), (w.add_embedding_length, 64),
                       (w.add_feed_forward_length, 128), (w.add_head_count, 4),
                       (w.add_context_length, 64), (w.add_vocab_size, vocab_size)):
        add(value)
    return w


def finish(w: GGUFWriter) -> None:
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.fixture(scope="module")
def sentencepiece_gguf(tmp_path_factory):
    tokens, scores, types = sentencepiece_vocab()
    path = tmp_path_factory.mktemp("spm") / "spm.gguf"
    w = vocabulary_writer(path, len(tokens))
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    finish(w)
    meta = {"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": tokens,
            "tokenizer.ggml.scores": scores, "tokenizer.ggml.token_type": types,
            "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2,
            "tokenizer.ggml.unknown_token_id": 0}
    return path, meta


def test_sentencepiece_vocabulary_matches_transformers(sentencepiece_gguf):
    from transformers import AutoTokenizer

    path, meta = sentencepiece_gguf
    ours = tokenizer_from_gguf(meta)
    theirs = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    for text in TEXTS:
        ids = ours.encode(text)
        assert ids == theirs(text)["input_ids"], text
        assert ours.decode(ids, skip_special_tokens=True) == theirs.decode(
            ids, skip_special_tokens=True)
    # BOS first (llama.cpp adds it to SentencePiece vocabularies), the prefix space, and a
    # character the pieces lack as its UTF-8 bytes (<0xE4> is id 3 + 0xE4).
    assert ours.encode("你") == [1, ours.token_to_id("▁"), *(3 + b for b in "你".encode())]


@pytest.mark.parametrize("pre", ["gpt-2", "llama-bpe", "qwen2"])
def test_byte_level_split_rules_match_transformers(tmp_path, pre):
    """The same byte-level vocabulary under each common `tokenizer.ggml.pre` split rule: they
    differ on digit runs, contractions and newlines, and must differ as transformers' do."""
    from transformers import AutoTokenizer

    from lmstack.tokenizer import train_bpe_from_iterator

    docs = [inspect.getdoc(o) or "" for o in (dict, list, str, int, Backend)]
    docs += ["In 2024 we'll count 1234567 items, isn't it?\r\n\n  indented"] * 20
    trained = train_bpe_from_iterator(docs, vocab_size=400, show_progress=False)
    meta = gguf_tokenizer_metadata(trained, len(trained))
    w = vocabulary_writer(tmp_path / "v.gguf", len(meta["tokens"]))
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(meta["tokens"])
    w.add_token_types(meta["token_types"])
    w.add_token_merges(meta["merges"])
    w.add_eos_token_id(meta["special_ids"]["eos"])
    finish(w)
    ours = tokenizer_from_gguf({
        "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": pre,
        "tokenizer.ggml.tokens": meta["tokens"], "tokenizer.ggml.token_type": meta["token_types"],
        "tokenizer.ggml.merges": meta["merges"],
        "tokenizer.ggml.eos_token_id": meta["special_ids"]["eos"]})
    theirs = AutoTokenizer.from_pretrained(tmp_path, gguf_file="v.gguf")
    text = "In 2024 we'll count 1234567 items, isn't it?\r\n\n  indented <|im_end|> 你好"
    assert ours.encode(text) == theirs(text)["input_ids"]
    assert ours.decode(ours.encode(text)) == text


def test_merges_follow_scores_not_file_order():
    """The deliberate break: ranking merges by file position instead of score changes them."""
    tokens = ["a", "b", "c", "bc", "ab"]
    assert merges_from_scores(tokens, [0, 0, 0, -2, -1]) == [("a", "b"), ("b", "c")]
    assert merges_from_scores(tokens, [0, 0, 0, -1, -2]) == [("b", "c"), ("a", "b")]


@pytest.mark.parametrize("meta, message", [
    ({"tokenizer.ggml.model": "bert"}, "GGUF tokenizer model 'bert' is not supported"),
    ({"tokenizer.ggml.model": "gpt2", "tokenizer.ggml.tokens": ["a"],
      "tokenizer.ggml.pre": "chameleon"}, "GGUF pre-tokenizer 'chameleon' is not supported"),
])
def test_unsupported_vocabularies_are_one_clear_line(meta, message):
    with pytest.raises(TokenizerError, match=message) as info:
        tokenizer_from_gguf(meta)
    assert "\n" not in str(info.value)
