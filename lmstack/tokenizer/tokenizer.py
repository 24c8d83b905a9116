"""`Tokenizer`: encode/decode, padded batches, chat templates and save/load of an HF folder.

Wraps a Rust `tokenizers.Tokenizer` plus the folder's settings. Follows transformers (v5)
`TokenizersBackend` / `AutoTokenizer`, which the parity tests hold it to, id for id.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from tokenizers import AddedToken
from tokenizers import Tokenizer as Backend

from lmstack.fileio import atomic_write_text
from lmstack.tokenizer.batching import resolve_padding_truncation, to_tensor
from lmstack.tokenizer.chat_template import render_chat_template, select_chat_template
from lmstack.tokenizer.config import (
    CHAT_TEMPLATE_FILE,
    CONFIG_FILE,
    NAMED_SPECIAL_TOKENS,
    TokenizerConfig,
)
from lmstack.tokenizer.errors import TokenizerError
from lmstack.tokenizer.hf_folder import TOKENIZER_FILE, read_tokenizer_folder
from lmstack.tokenizer.vocab_files import bert_template, special_tokens_template


def _clean_up_tokenization(text: str) -> str:
    # WordPiece decoding leaves " ." and " n't"; transformers' optional clean-up undoes that.
    for spaced, joined in (
        (" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
        (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re"),
    ):  # fmt: skip
        text = text.replace(spaced, joined)
    return text


class Tokenizer:
    """Text <-> token ids for one model, identical to `transformers.AutoTokenizer` on its folder.

    `backend` does the work (normalize, pre-tokenize, BPE/WordPiece, special-token template);
    `config` holds what tokenizer_config.json says (special tokens, lengths, chat template).
    The Tokenizer owns `backend` from then on: it registers the special tokens on it.
    """

    def __init__(self, backend: Backend, config: TokenizerConfig | None = None) -> None:
        self.backend = backend
        self.config = config if config is not None else TokenizerConfig()
        # Padding and truncation are settings *of* a tokenizers backend, not arguments of its
        # encode. Calls that need them use a private copy (`_shaper`) under this lock, so the
        # shared backend is never reconfigured and plain encodes run concurrently, lock-free.
        self._lock = threading.Lock()
        self._shaper: Backend | None = None
        # A tokenizer.json may bake in padding/truncation (all-MiniLM pads to 128); here, as in
        # transformers, those are per-call choices, so the resting state is "neither".
        self.backend.no_truncation()
        self.backend.no_padding()
        self.backend.encode_special_tokens = self.config.split_special_tokens
        self._register_special_tokens()
        cfg = self.config
        if cfg.add_bos_token is not None or cfg.add_eos_token is not None:
            self._install_bos_eos_template(bool(cfg.add_bos_token), bool(cfg.add_eos_token))
        elif self.backend.post_processor is None:
            self._install_bos_eos_template(False, False)

    # ----------------------------------------------------------------- construction helpers
    def _register_special_tokens(self) -> None:
        """Make every configured special token one unsplittable id, as transformers does."""
        present = {t.content: t for t in self.backend.get_added_tokens_decoder().values()}
        for _, fields in sorted(self.config.added_tokens.items()):
            if fields["content"] not in present:
                token = AddedToken(**{k: v for k, v in fields.items() if k != "__type"})
                self.backend.add_tokens([token])
                present[token.content] = token
        for content in self.all_special_tokens:
            known = present.get(content)
            if known is not None and known.special:
                continue
            # Keep flags the folder already chose (e.g. RoBERTa's lstrip <mask>); special tokens
            # default to normalized=False so that lower-casing cannot hide "[CLS]".
            flags = {"normalized": False, **self.config.token_flags.get(content, {})}
            if known is not None:
                flags = {k: getattr(known, k) for k in ("lstrip", "rstrip", "normalized")}
                flags["single_word"] = known.single_word
            self.backend.add_special_tokens([AddedToken(content, special=True, **flags)])

    def _install_bos_eos_template(self, add_bos: bool, add_eos: bool) -> None:
        bos = self._special_pair("bos_token") if add_bos else None
        eos = self._special_pair("eos_token") if add_eos else None
        self.backend.post_processor = special_tokens_template(bos, eos)

    def _special_pair(self, name: str) -> tuple[str, int]:
        token = self.config.special_tokens.get(name)
        token_id = None if token is None else self.backend.token_to_id(token)
        if token is None or token_id is None:
            raise TokenizerError(
                f"This tokenizer has no {name} in its vocabulary; set '{name}' in "
                "tokenizer_config.json to a token of the vocabulary."
            )
        return token, token_id

    # ----------------------------------------------------------------- loading and saving
    @classmethod
    def from_folder(cls, folder: str | os.PathLike[str]) -> Tokenizer:
        """Load a Hugging Face tokenizer folder: tokenizer.json, or vocab.txt (BERT WordPiece), or
        vocab.json + merges.txt (GPT-2 byte-level BPE), with tokenizer_config.json if present."""
        backend, config, source = read_tokenizer_folder(Path(folder))
        tokenizer = cls(backend, config)
        if source == "vocab.txt":
            # BERT wraps text in [CLS] ... [SEP]; their ids exist once specials are registered.
            cls_token, sep_token = (
                tokenizer._special_pair("cls_token"),
                tokenizer._special_pair("sep_token"),
            )
            tokenizer.backend.post_processor = bert_template(cls_token, sep_token)
        return tokenizer

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write tokenizer.json + tokenizer_config.json (each atomically); returns the folder.

        The result loads with `Tokenizer.from_folder` and with `transformers.AutoTokenizer`.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        added = {
            index: {
                "content": token.content,
                "lstrip": token.lstrip,
                "normalized": token.normalized,
                "rstrip": token.rstrip,
                "single_word": token.single_word,
                "special": token.special,
            }
            for index, token in self.backend.get_added_tokens_decoder().items()
        }
        # add_bos/eos are already baked into tokenizer.json's post-processor.
        config = replace(self.config, added_tokens=added, add_bos_token=None, add_eos_token=None)
        backend_json = self.backend.to_str(pretty=True)
        # A crash mid-save must never leave a half-written tokenizer.json behind.
        atomic_write_text(folder / TOKENIZER_FILE, backend_json)
        config_json = json.dumps(config.to_dict(), indent=2, ensure_ascii=False) + "\n"
        atomic_write_text(folder / CONFIG_FILE, config_json)
        # A chat_template.jinja beside the config would win over it on load; keep it in step.
        template_file = folder / CHAT_TEMPLATE_FILE
        template = self.config.chat_template
        if isinstance(template, dict):
            template = template.get("default")
        if template_file.is_file() and template is not None:
            atomic_write_text(template_file, template)
        return folder

    # ----------------------------------------------------------------- special tokens
    def _token_id(self, name: str) -> int | None:
        token = self.config.special_tokens.get(name)
        return None if token is None else self.backend.token_to_id(token)

    @property
    def bos_token(self) -> str | None:
        return self.config.special_tokens.get("bos_token")

    @property
    def eos_token(self) -> str | None:
        return self.config.special_tokens.get("eos_token")

    @property
    def pad_token(self) -> str | None:
        return self.config.special_tokens.get("pad_token")

    @property
    def unk_token(self) -> str | None:
        return self.config.special_tokens.get("unk_token")

    @property
    def bos_token_id(self) -> int | None:
        return self._token_id("bos_token")

    @property
    def eos_token_id(self) -> int | None:
        return self._token_id("eos_token")

    @property
    def pad_token_id(self) -> int | None:
        return self._token_id("pad_token")

    @property
    def unk_token_id(self) -> int | None:
        return self._token_id("unk_token")

    @property
    def sep_token_id(self) -> int | None:
        return self._token_id("sep_token")

    @property
    def cls_token_id(self) -> int | None:
        return self._token_id("cls_token")

    @property
    def mask_token_id(self) -> int | None:
        return self._token_id("mask_token")

    @property
    def all_special_tokens(self) -> list[str]:
        """Named special tokens in transformers' order, then model-specific and additional ones."""
        named = self.config.special_tokens
        order = [k for k in NAMED_SPECIAL_TOKENS if k in named]
        order += [k for k in named if k not in NAMED_SPECIAL_TOKENS]
        tokens = [named[k] for k in order] + list(self.config.additional_special_tokens)
        return list(dict.fromkeys(tokens))

    @property
    def all_special_ids(self) -> list[int]:
        ids = (self.backend.token_to_id(token) for token in self.all_special_tokens)
        return [i for i in ids if i is not None]

    def _wrapping_of_empty_text(self) -> list[int]:
        # Asking the post-processor itself makes add_bos/eos_token true for any folder that adds
        # them (a Llama tokenizer.json included), whatever the config says.
        return self.backend.encode("", add_special_tokens=True).ids

    @property
    def add_bos_token(self) -> bool:
        ids = self._wrapping_of_empty_text()
        return self.bos_token_id is not None and ids[:1] == [self.bos_token_id]

    @property
    def add_eos_token(self) -> bool:
        ids = self._wrapping_of_empty_text()
        return self.eos_token_id is not None and ids[-1:] == [self.eos_token_id]

    def set_special_tokens_template(self, add_bos: bool, add_eos: bool) -> None:
        """Wrap every encoded text in [bos] ... [eos] (either optional), like Llama's flags."""
        with self._lock:
            self._install_bos_eos_template(add_bos, add_eos)
            self._shaper = None  # copied again, with the new template, when next needed

    # ----------------------------------------------------------------- vocabulary
    @property
    def vocab_size(self) -> int:
        """Size of the base vocabulary, without added tokens (transformers' meaning)."""
        return self.backend.get_vocab_size(with_added_tokens=False)

    def __len__(self) -> int:
        """Size of the whole vocabulary including added tokens: the embedding rows a model needs."""
        return self.backend.get_vocab_size(with_added_tokens=True)

    def get_vocab(self) -> dict[str, int]:
        return self.backend.get_vocab(with_added_tokens=True)

    def token_to_id(self, token: str) -> int | None:
        return self.backend.token_to_id(token)

    def id_to_token(self, index: int) -> str | None:
        return self.backend.id_to_token(index)

    def tokenize(self, text: str) -> list[str]:
        """The token strings of `text`, without special tokens."""
        return self.backend.encode(text, add_special_tokens=False).tokens

    # ----------------------------------------------------------------- encode / decode
    def encode(
        self, text: str, add_special_tokens: bool = True, *, text_pair: str | None = None
    ) -> list[int]:
        """Token ids of one text (or a text pair, e.g. for BERT's sentence pairs)."""
        if not isinstance(text, str):
            raise TokenizerError(
                f"encode takes one string, got {type(text).__name__}; use encode_batch for a list."
            )
        return self.backend.encode(text, text_pair, add_special_tokens=add_special_tokens).ids

    def encode_batch(
        self, texts: Sequence[str], add_special_tokens: bool = True
    ) -> list[list[int]]:
        """Token ids of many texts, encoded in parallel by the Rust backend; no padding."""
        if isinstance(texts, str):
            raise TokenizerError("encode_batch takes a list of strings; use encode for one string.")
        encodings = self.backend.encode_batch(list(texts), add_special_tokens=add_special_tokens)
        return [e.ids for e in encodings]

    def decode(
        self,
        ids: Sequence[int] | Any,
        skip_special_tokens: bool = False,
        clean_up_tokenization_spaces: bool | None = None,
    ) -> str:
        """Text of token ids; accepts lists, numpy arrays and 1-D tensors."""
        if hasattr(ids, "tolist"):  # numpy arrays and torch tensors
            ids = ids.tolist()
        ids = [ids] if isinstance(ids, int) else [int(i) for i in ids]
        text = self.backend.decode(ids, skip_special_tokens=skip_special_tokens)
        clean = clean_up_tokenization_spaces
        if clean is None:
            clean = self.config.clean_up_tokenization_spaces
        # The clean-up was written for WordPiece; on byte-level BPE it would delete real spaces
        # (transformers v5 skips it there too).
        if clean and type(self.backend.model).__name__ != "BPE":
            text = _clean_up_tokenization(text)
        return text

    def decode_batch(
        self, batch: Sequence[Sequence[int]], skip_special_tokens: bool = False
    ) -> list[str]:
        return [self.decode(ids, skip_special_tokens=skip_special_tokens) for ids in batch]

    def __call__(
        self,
        text: str | Sequence[str],
        text_pair: str | Sequence[str] | None = None,
        *,
        add_special_tokens: bool = True,
        padding: bool | str = False,
        truncation: bool | str | None = None,
        max_length: int | None = None,
        pad_to_multiple_of: int | None = None,
        padding_side: str | None = None,
        return_tensors: str | None = None,
        return_attention_mask: bool | None = None,
        return_token_type_ids: bool | None = None,
    ) -> dict[str, Any]:
        """Model inputs for one text or a batch: input_ids, attention_mask (and token_type_ids for
        BERT-style tokenizers), padded and truncated with transformers' rules.

        padding: False, True/"longest", or "max_length"; truncation: True/"longest_first",
        "only_first", "only_second" or False; return_tensors: None (lists), "pt" or "np".
        """
        batched = not isinstance(text, str)
        texts = list(text) if batched else [text]
        inputs: list[Any] = texts
        if text_pair is not None:
            pairs = [text_pair] if isinstance(text_pair, str) else list(text_pair)
            if isinstance(text_pair, str) == batched or len(pairs) != len(texts):
                raise TokenizerError(
                    "text_pair must match text: one string each, or equal-length lists."
                )
            inputs = list(zip(texts, pairs, strict=True))
        pad, truncate, max_length = resolve_padding_truncation(
            padding, truncation, max_length, self.config.model_max_length
        )
        if pad and self.pad_token_id is None:
            raise TokenizerError(
                "Asked to pad but this tokenizer has no pad token; set one, e.g. "
                "tokenizer.config.special_tokens['pad_token'] = tokenizer.eos_token."
            )
        side = padding_side or self.config.padding_side
        if side not in ("left", "right"):
            raise TokenizerError(f"padding_side must be 'left' or 'right', not {side!r}.")

        if not (pad or truncate):
            encodings = self.backend.encode_batch(inputs, add_special_tokens=add_special_tokens)
        else:
            with self._lock:
                shaper = self._shaping_backend()
                try:
                    if truncate:
                        shaper.enable_truncation(
                            max_length, strategy=truncate, direction=self.config.truncation_side
                        )
                    if pad:
                        shaper.enable_padding(
                            direction=side,
                            pad_id=self.pad_token_id,
                            pad_type_id=0,
                            pad_token=self.pad_token,
                            length=max_length if pad == "max_length" else None,
                            pad_to_multiple_of=pad_to_multiple_of,
                        )
                    encodings = shaper.encode_batch(inputs, add_special_tokens=add_special_tokens)
                finally:
                    shaper.no_truncation()
                    shaper.no_padding()

        names = self.config.model_input_names
        want_types = (
            return_token_type_ids
            if return_token_type_ids is not None
            else ("token_type_ids" in names)
        )
        want_mask = (
            return_attention_mask
            if return_attention_mask is not None
            else ("attention_mask" in names)
        )
        out: dict[str, Any] = {"input_ids": [e.ids for e in encodings]}
        if want_types:
            out["token_type_ids"] = [e.type_ids for e in encodings]
        if want_mask:
            out["attention_mask"] = [e.attention_mask for e in encodings]
        if return_tensors is not None:
            return {key: to_tensor(rows, return_tensors) for key, rows in out.items()}
        return out if batched else {key: rows[0] for key, rows in out.items()}

    def _shaping_backend(self) -> Backend:
        """The private copy of the backend that padded or truncated calls configure (held
        under `_lock`); made on first use, after from_folder has finished setting it up."""
        if self._shaper is None:
            self._shaper = Backend.from_str(self.backend.to_str())
            self._shaper.encode_special_tokens = self.backend.encode_special_tokens
        return self._shaper

    # ----------------------------------------------------------------- chat
    def apply_chat_template(
        self,
        messages: Sequence[Mapping[str, Any]],
        add_generation_prompt: bool = False,
        tokenize: bool = False,
        tools: Sequence[Mapping[str, Any]] | None = None,
        *,
        documents: Sequence[Mapping[str, Any]] | None = None,
        chat_template: str | None = None,
        **template_kwargs: Any,
    ) -> str | list[int]:
        """Render a conversation with the model's chat template (ChatML when it has none).

        `chat_template` may be a template string or the name of one of the model's templates.
        With tokenize=True, returns ids, encoded without adding special tokens again (the
        template writes them), as transformers does.
        """
        templates = self.config.chat_template
        if chat_template is not None and not (
            isinstance(templates, dict) and chat_template in templates
        ):
            template = chat_template  # a literal template string
        else:
            template = select_chat_template(templates, chat_template, tools)
        special = {k: v for k, v in self.config.special_tokens.items() if v is not None}
        rendered = render_chat_template(
            template,
            messages,
            add_generation_prompt=add_generation_prompt,
            tools=tools,
            documents=documents,
            special_tokens=special,
            **template_kwargs,
        )
        return self.encode(rendered, add_special_tokens=False) if tokenize else rendered

    def __repr__(self) -> str:
        model = type(self.backend.model).__name__
        return (
            f"Tokenizer({model}, vocab={len(self)}, class={self.config.tokenizer_class}, "
            f"specials={self.all_special_tokens})"
        )
