"""Mistakes a user can make get a TokenizerError (a ValueError) whose message names the fix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lmstack.tokenizer import Tokenizer, TokenizerError
from lmstack.tokenizer.chat_template import select_chat_template


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(TokenizerError, match="does not exist.*train_bpe"):
        Tokenizer.from_folder(tmp_path / "nowhere")


def test_tokenizer_error_is_a_value_error() -> None:
    assert issubclass(TokenizerError, ValueError)


def test_a_file_instead_of_a_folder(trained_folder: Path) -> None:
    with pytest.raises(TokenizerError, match="pass the folder"):
        Tokenizer.from_folder(trained_folder / "tokenizer.json")


def test_folder_without_tokenizer_files_lists_what_it_found(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(TokenizerError, match=r"found: config\.json.*tokenizer\.json"):
        Tokenizer.from_folder(tmp_path)


def test_sentencepiece_only_folder_gets_a_conversion_hint(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.model").write_bytes(b"\x00")
    with pytest.raises(TokenizerError, match="save_pretrained"):
        Tokenizer.from_folder(tmp_path)


def test_corrupt_files(trained_folder: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken_json"
    shutil.copytree(trained_folder, broken)
    (broken / "tokenizer.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(TokenizerError, match="not a valid tokenizers file"):
        Tokenizer.from_folder(broken)

    broken_config = tmp_path / "broken_config"
    shutil.copytree(trained_folder, broken_config)
    (broken_config / "tokenizer_config.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(TokenizerError, match="JSON object"):
        Tokenizer.from_folder(broken_config)


def test_vocab_txt_without_unknown_token(tmp_path: Path) -> None:
    (tmp_path / "vocab.txt").write_text("[CLS]\n[SEP]\nhello\n", encoding="utf-8")
    with pytest.raises(TokenizerError, match="unk_token"):
        Tokenizer.from_folder(tmp_path)


def test_padding_needs_a_pad_token(trained_folder: Path, tmp_path: Path) -> None:
    folder = tmp_path / "no_pad"
    shutil.copytree(trained_folder, folder)
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    del config["pad_token"]
    config_path.write_text(json.dumps(config), encoding="utf-8")
    tok = Tokenizer.from_folder(folder)
    assert tok.pad_token_id is None
    with pytest.raises(TokenizerError, match="no pad token"):
        tok(["a", "bb"], padding=True)
    # without padding it still works
    assert len(tok(["a", "bb"])["input_ids"]) == 2


def test_bad_call_arguments(trained: Tokenizer) -> None:
    with pytest.raises(TokenizerError, match="padding=True"):
        trained(["a", "a b c d"], return_tensors="pt")
    with pytest.raises(TokenizerError, match="padding must be"):
        trained("a", padding="sideways")
    with pytest.raises(TokenizerError, match="truncation must be"):
        trained("a", truncation="middle")
    with pytest.raises(TokenizerError, match="return_tensors"):
        trained("a", return_tensors="tf")
    with pytest.raises(TokenizerError, match="padding_side"):
        trained(["a"], padding=True, padding_side="up")
    with pytest.raises(TokenizerError, match="text_pair"):
        trained(["a", "b"], text_pair=["c"])
    with pytest.raises(TokenizerError, match="encode_batch"):
        trained.encode(["a", "b"])  # type: ignore[arg-type]
    with pytest.raises(TokenizerError, match="use encode"):
        trained.encode_batch("ab")


def test_several_templates_without_default() -> None:
    templates = {"rag": "x", "tool_use": "y"}
    with pytest.raises(TokenizerError, match="none is 'default'"):
        select_chat_template(templates)
    with pytest.raises(TokenizerError, match="No chat template named 'nope'"):
        select_chat_template(templates, name="nope")
    assert select_chat_template(templates, tools=[{}]) == "y"
