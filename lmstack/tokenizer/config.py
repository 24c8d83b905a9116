"""Tokenizer settings: tokenizer_config.json, special_tokens_map.json, chat_template.jinja.

Read into one dataclass and written back, following the file layout and precedence rules of
transformers (v5) `PreTrainedTokenizerBase.from_pretrained`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmstack.tokenizer.errors import TokenizerError

CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
CHAT_TEMPLATE_FILE = "chat_template.jinja"
CHAT_TEMPLATE_DIR = "additional_chat_templates"

# The named special tokens every tokenizer may have, in transformers' order.
NAMED_SPECIAL_TOKENS = (
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
)

# Tokenizer classes whose constructors default special tokens the config may leave out; we apply
# the same defaults so a folder means the same thing to us as to transformers.
_BERT_DEFAULTS = {
    "unk_token": "[UNK]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
    "cls_token": "[CLS]",
    "mask_token": "[MASK]",
}
_GPT2_DEFAULTS = {
    "unk_token": "<|endoftext|>",
    "bos_token": "<|endoftext|>",
    "eos_token": "<|endoftext|>",
}
CLASS_DEFAULT_SPECIAL_TOKENS: dict[str, dict[str, str]] = {
    "BertTokenizer": _BERT_DEFAULTS,
    "DistilBertTokenizer": _BERT_DEFAULTS,
    "ConvBertTokenizer": _BERT_DEFAULTS,
    "ElectraTokenizer": _BERT_DEFAULTS,
    "GPT2Tokenizer": _GPT2_DEFAULTS,
}

# Segment ids matter only to encoders trained with next-sentence/pair objectives; transformers
# returns them for these classes and not for the others.
_CLASSES_WITH_TOKEN_TYPE_IDS = {
    "BertTokenizer",
    "ConvBertTokenizer",
    "ElectraTokenizer",
    "DebertaTokenizer",
    "DebertaV2Tokenizer",
}

# Decoder-only families whose tokenizer classes pad on the left unless the config says otherwise
# (generation appends on the right, so real tokens must end flush there).
_CLASSES_PADDING_LEFT = {
    "LlamaTokenizer",
    "CodeLlamaTokenizer",
    "GemmaTokenizer",
    "CohereTokenizer",
    "XLNetTokenizer",
}

# transformers writes int(1e30) for "no limit"; anything this large means unbounded.
_UNBOUNDED_LENGTH = int(1e20)

# Keys we read into fields (the rest is kept verbatim in `extra` and written back on save).
_OWN_KEYS = {
    *NAMED_SPECIAL_TOKENS,
    "tokenizer_class",
    "additional_special_tokens",
    "extra_special_tokens",
    "added_tokens_decoder",
    "add_bos_token",
    "add_eos_token",
    "model_max_length",
    "chat_template",
    "padding_side",
    "truncation_side",
    "model_input_names",
    "clean_up_tokenization_spaces",
    "split_special_tokens",
}


def base_class_name(tokenizer_class: str) -> str:
    """'BertTokenizerFast' -> 'BertTokenizer': v5 merged the slow and fast classes."""
    return tokenizer_class.removesuffix("Fast")


def token_content(value: Any) -> tuple[str, dict[str, bool]]:
    """A special token as configs spell it: a string, or an AddedToken dict with its flags."""
    if isinstance(value, str):
        return value, {}
    if isinstance(value, dict) and "content" in value:
        flags = {k: bool(v) for k, v in value.items() if k not in ("content", "__type", "special")}
        return str(value["content"]), flags
    raise TokenizerError(
        f"Cannot read special token {value!r}; write it as a string or as "
        '{"content": "...", "lstrip": false, ...} in tokenizer_config.json.'
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise TokenizerError(f"Cannot read {path}: {err}. Fix or delete the file.") from err
    if not isinstance(data, dict):
        raise TokenizerError(f"{path} must hold a JSON object, got {type(data).__name__}.")
    return data


@dataclass
class TokenizerConfig:
    """What tokenizer_config.json (and its sibling files) say about a tokenizer."""

    tokenizer_class: str = "PreTrainedTokenizerFast"
    # Named special tokens: the seven standard ones plus model-specific "*_token" entries.
    special_tokens: dict[str, str] = field(default_factory=dict)
    additional_special_tokens: list[str] = field(default_factory=list)
    # AddedToken flags (lstrip, rstrip, normalized, single_word) for tokens configs spell out.
    token_flags: dict[str, dict[str, bool]] = field(default_factory=dict)
    # id -> AddedToken dict, as `added_tokens_decoder` stores the tokens added on top of a vocab.
    added_tokens: dict[int, dict[str, Any]] = field(default_factory=dict)
    # None: keep whatever post-processor the tokenizer already has.
    add_bos_token: bool | None = None
    add_eos_token: bool | None = None
    model_max_length: int | None = None
    chat_template: str | dict[str, str] | None = None
    padding_side: str = "right"
    truncation_side: str = "right"
    model_input_names: list[str] = field(default_factory=list)
    clean_up_tokenization_spaces: bool = False
    split_special_tokens: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for side in (self.padding_side, self.truncation_side):
            if side not in ("left", "right"):
                raise TokenizerError(
                    f"padding/truncation side must be 'left' or 'right', not {side!r}."
                )
        if not self.model_input_names:
            wants_types = base_class_name(self.tokenizer_class) in _CLASSES_WITH_TOKEN_TYPE_IDS
            types = ["token_type_ids"] if wants_types else []
            self.model_input_names = ["input_ids", *types, "attention_mask"]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenizerConfig:
        """Interpret the keys of a tokenizer_config.json (already merged with its side files)."""
        tokenizer_class = str(data.get("tokenizer_class") or "PreTrainedTokenizerFast")
        defaults = CLASS_DEFAULT_SPECIAL_TOKENS.get(base_class_name(tokenizer_class), {})
        special: dict[str, str] = {}
        flags: dict[str, dict[str, bool]] = {}
        for key, value in {**defaults, **data}.items():
            # Model-specific names like "image_token" are special tokens too (transformers v5).
            is_named = key in NAMED_SPECIAL_TOKENS or (
                key.endswith("_token")
                and key not in _OWN_KEYS
                and (isinstance(value, str) or (isinstance(value, dict) and "content" in value))
            )
            if not is_named or value is None:
                continue
            content, token_flags = token_content(value)
            special[key] = content
            if token_flags:
                flags[content] = token_flags

        additional: list[str] = []
        extra_tokens = data.get("additional_special_tokens") or data.get("extra_special_tokens")
        if isinstance(extra_tokens, dict):  # v5 spelling of more named tokens
            for key, value in extra_tokens.items():
                special[key] = token_content(value)[0]
        elif extra_tokens:
            for value in extra_tokens:
                content, token_flags = token_content(value)
                additional.append(content)
                if token_flags:
                    flags[content] = token_flags

        added = {int(i): dict(t) for i, t in (data.get("added_tokens_decoder") or {}).items()}

        max_length = data.get("model_max_length")
        if max_length is not None and int(max_length) >= _UNBOUNDED_LENGTH:
            max_length = None

        template = data.get("chat_template")
        if isinstance(template, list):  # saved as [{"name": ..., "template": ...}, ...]
            template = {t["name"]: t["template"] for t in template}

        return cls(
            tokenizer_class=tokenizer_class,
            special_tokens=special,
            additional_special_tokens=additional,
            token_flags=flags,
            added_tokens=added,
            add_bos_token=data.get("add_bos_token"),
            add_eos_token=data.get("add_eos_token"),
            model_max_length=None if max_length is None else int(max_length),
            chat_template=template,
            padding_side=data.get("padding_side")
            or ("left" if base_class_name(tokenizer_class) in _CLASSES_PADDING_LEFT else "right"),
            truncation_side=data.get("truncation_side") or "right",
            model_input_names=list(data.get("model_input_names") or []),
            clean_up_tokenization_spaces=bool(data.get("clean_up_tokenization_spaces", False)),
            split_special_tokens=bool(data.get("split_special_tokens", False)),
            extra={k: v for k, v in data.items() if k not in _OWN_KEYS and k not in special},
        )

    @classmethod
    def from_folder(cls, folder: Path) -> TokenizerConfig:
        """Read tokenizer_config.json, special_tokens_map.json and chat templates of a folder."""
        config_path = folder / CONFIG_FILE
        data = _read_json(config_path) if config_path.is_file() else {}
        # transformers reads the legacy special_tokens_map.json only when the config has no
        # added_tokens_decoder, and then lets it override the config's token entries.
        map_path = folder / SPECIAL_TOKENS_MAP_FILE
        if "added_tokens_decoder" not in data and map_path.is_file():
            data.update(_read_json(map_path))
        # Standalone template files win over the config entry (newer transformers save them).
        templates: dict[str, str] = {}
        if (folder / CHAT_TEMPLATE_FILE).is_file():
            templates["default"] = (folder / CHAT_TEMPLATE_FILE).read_text(encoding="utf-8")
        if (folder / CHAT_TEMPLATE_DIR).is_dir():
            for path in sorted((folder / CHAT_TEMPLATE_DIR).glob("*.jinja")):
                templates[path.name.removesuffix(".jinja")] = path.read_text(encoding="utf-8")
        if list(templates) == ["default"]:
            data["chat_template"] = templates["default"]
        elif templates:
            data["chat_template"] = templates
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        """The tokenizer_config.json contents that `from_dict` reads back to an equal config."""
        data: dict[str, Any] = dict(self.extra)
        data["tokenizer_class"] = self.tokenizer_class
        for key, content in self.special_tokens.items():
            flags = self.token_flags.get(content)
            data[key] = {"content": content, **flags, "special": True} if flags else content
        if self.additional_special_tokens:
            data["additional_special_tokens"] = list(self.additional_special_tokens)
        if self.added_tokens:
            data["added_tokens_decoder"] = {str(i): t for i, t in sorted(self.added_tokens.items())}
        if self.model_max_length is not None:
            data["model_max_length"] = self.model_max_length
        data["padding_side"] = self.padding_side
        data["truncation_side"] = self.truncation_side
        data["model_input_names"] = list(self.model_input_names)
        data["clean_up_tokenization_spaces"] = self.clean_up_tokenization_spaces
        if self.split_special_tokens:
            data["split_special_tokens"] = True
        if isinstance(self.chat_template, dict):
            data["chat_template"] = [
                {"name": name, "template": t} for name, t in self.chat_template.items()
            ]
        elif self.chat_template is not None:
            data["chat_template"] = self.chat_template
        return data
