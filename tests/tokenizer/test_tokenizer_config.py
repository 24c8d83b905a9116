"""TokenizerConfig: reading tokenizer_config.json and its side files with transformers' rules."""

from __future__ import annotations

import json
from pathlib import Path

from lmstack.tokenizer import TokenizerConfig


def write(folder: Path, name: str, data: dict) -> None:
    (folder / name).write_text(json.dumps(data), encoding="utf-8")


def test_round_trip_keeps_everything() -> None:
    data = {
        "tokenizer_class": "LlamaTokenizerFast",
        "bos_token": "<s>",
        "eos_token": {"content": "</s>", "lstrip": False, "rstrip": True, "__type": "AddedToken"},
        "image_token": "<image>",  # model-specific named token (transformers v5)
        "additional_special_tokens": ["<tool>"],
        "model_max_length": 4096,
        "do_lower_case": False,  # an unknown key is kept verbatim
        "chat_template": [{"name": "default", "template": "a"}, {"name": "rag", "template": "b"}],
    }
    config = TokenizerConfig.from_dict(data)
    assert config.special_tokens == {
        "bos_token": "<s>",
        "eos_token": "</s>",
        "image_token": "<image>",
    }
    assert config.token_flags["</s>"]["rstrip"] is True
    assert config.chat_template == {"default": "a", "rag": "b"}
    assert config.padding_side == "left"  # Llama's class default
    assert config.model_input_names == ["input_ids", "attention_mask"]
    assert config.extra == {"do_lower_case": False}
    assert TokenizerConfig.from_dict(config.to_dict()) == config


def test_defaults_follow_the_tokenizer_class() -> None:
    bert = TokenizerConfig.from_dict({"tokenizer_class": "BertTokenizer"})
    assert bert.special_tokens["mask_token"] == "[MASK]" and bert.padding_side == "right"
    assert bert.model_input_names == ["input_ids", "token_type_ids", "attention_mask"]
    gpt2 = TokenizerConfig.from_dict({"tokenizer_class": "GPT2Tokenizer", "bos_token": None})
    assert gpt2.special_tokens == {"unk_token": "<|endoftext|>", "eos_token": "<|endoftext|>"}
    # transformers' "no limit" sentinel
    assert TokenizerConfig.from_dict({"model_max_length": int(1e30)}).model_max_length is None


def test_special_tokens_map_applies_only_without_added_tokens_decoder(tmp_path: Path) -> None:
    write(tmp_path, "tokenizer_config.json", {"eos_token": "<a>"})
    write(tmp_path, "special_tokens_map.json", {"eos_token": {"content": "<b>"}})
    assert TokenizerConfig.from_folder(tmp_path).special_tokens["eos_token"] == "<b>"
    decoder = {"5": {"content": "<a>", "special": True}}
    write(tmp_path, "tokenizer_config.json", {"eos_token": "<a>", "added_tokens_decoder": decoder})
    config = TokenizerConfig.from_folder(tmp_path)
    assert config.special_tokens["eos_token"] == "<a>"
    assert config.added_tokens == {5: {"content": "<a>", "special": True}}


def test_template_files(tmp_path: Path) -> None:
    write(tmp_path, "tokenizer_config.json", {"chat_template": "from config"})
    assert TokenizerConfig.from_folder(tmp_path).chat_template == "from config"
    (tmp_path / "chat_template.jinja").write_text("from file", encoding="utf-8")
    assert TokenizerConfig.from_folder(tmp_path).chat_template == "from file"
    (tmp_path / "additional_chat_templates").mkdir()
    (tmp_path / "additional_chat_templates" / "rag.jinja").write_text("rag", encoding="utf-8")
    assert TokenizerConfig.from_folder(tmp_path).chat_template == {
        "default": "from file",
        "rag": "rag",
    }
