"""Training byte-level BPE: exact round trips on any UTF-8, special tokens first, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmstack.tokenizer import (
    CHATML_TEMPLATE,
    Tokenizer,
    TokenizerError,
    train_bpe,
    train_bpe_from_iterator,
)


def test_round_trip_is_exact_for_mixed_scripts(
    trained: Tokenizer, mixed_text: str, corpus_text: str
) -> None:
    for text in [mixed_text, corpus_text, "", " ", "\n\n", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ☃ 😀" * 3, "\x00\x7f bytes"]:
        ids = trained.encode(text)
        assert trained.decode(ids) == text


def test_training_learns_merges(trained: Tokenizer) -> None:
    # 256 bytes + 3 specials is the floor; real merges must push well past it.
    assert trained.vocab_size > 400
    ids = trained.encode("The quick brown fox 我爱自然语言处理")
    assert len(ids) < len("The quick brown fox 我爱自然语言处理".encode())
    # A frequent Chinese word should be a single merged token, not its 6 UTF-8 bytes.
    assert len(trained.encode("语言")) < 6


def test_special_tokens_take_the_first_ids_and_never_split(trained: Tokenizer) -> None:
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    assert [trained.token_to_id(t) for t in specials] == [0, 1, 2]
    assert trained.encode("<|im_start|>user\nhi<|im_end|>")[0] == 1
    assert trained.eos_token == "<|endoftext|>" and trained.eos_token_id == 0
    assert trained.pad_token_id == 0 and trained.bos_token_id is None
    assert trained.all_special_ids == [0, 1, 2]
    assert trained.config.chat_template == CHATML_TEMPLATE
    # skip_special_tokens drops exactly the markers
    ids = trained.encode("<|im_start|>hi 你好<|im_end|>")
    assert trained.decode(ids, skip_special_tokens=True) == "hi 你好"


def test_no_special_tokens_added_by_default(trained: Tokenizer) -> None:
    # GPT-2/Qwen convention: a base LM sees raw text; documents are joined by eos explicitly.
    assert trained.encode("hello") == trained.encode("hello", add_special_tokens=False)
    assert not trained.add_bos_token and not trained.add_eos_token


def test_from_iterator_matches_from_files(
    corpus_file: Path, trained: Tokenizer, mixed_text: str
) -> None:
    lines = corpus_file.read_text(encoding="utf-8").splitlines(keepends=True)
    from_iter = train_bpe_from_iterator(iter(lines), vocab_size=600, show_progress=False)
    assert from_iter.get_vocab() == trained.get_vocab()
    assert from_iter.encode(mixed_text) == trained.encode(mixed_text)


def test_custom_special_tokens_and_named_roles(corpus_file: Path) -> None:
    tok = train_bpe(
        [corpus_file],
        vocab_size=400,
        special_tokens=["<s>", "</s>", "<pad>"],
        show_progress=False,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
    )
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (0, 1, 2)
    # No ChatML markers, so no ChatML template is attached (the default is still used at render).
    assert tok.config.chat_template is None


def test_vocab_size_too_small_is_a_clear_error(corpus_file: Path) -> None:
    with pytest.raises(TokenizerError, match="vocab_size >= 259"):
        train_bpe([corpus_file], vocab_size=100, show_progress=False)


def test_missing_training_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TokenizerError, match="not found"):
        train_bpe([tmp_path / "nope.txt"], vocab_size=300, show_progress=False)
    with pytest.raises(TokenizerError, match="at least one"):
        train_bpe([], vocab_size=300, show_progress=False)


def test_role_token_outside_special_tokens_is_rejected(corpus_file: Path) -> None:
    with pytest.raises(TokenizerError, match="add it there"):
        train_bpe([corpus_file], vocab_size=300, show_progress=False, bos_token="<s>")


def test_iterator_rejects_a_bare_string() -> None:
    with pytest.raises(TokenizerError, match="iterable of strings"):
        train_bpe_from_iterator("just one string", vocab_size=300, show_progress=False)
