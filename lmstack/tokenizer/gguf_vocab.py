"""A Tokenizer rebuilt from a GGUF file's `tokenizer.*` metadata, and that metadata written back.

Follows llama.cpp's vocabulary keys and pre-tokenizer names (gguf-py `Keys.Tokenizer`,
llama-vocab.cpp) and transformers' GGUF tokenizer conversion, which the parity tests hold it to.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tokenizers import AddedToken, Regex, decoders, pre_tokenizers
from tokenizers import Tokenizer as Backend
from tokenizers.models import BPE

from lmstack.tokenizer.config import TokenizerConfig
from lmstack.tokenizer.errors import TokenizerError
from lmstack.tokenizer.tokenizer import Tokenizer

# llama.cpp's token types (gguf-py TokenType).
NORMAL, CONTROL, USER_DEFINED, UNUSED = 1, 3, 4, 5

# Split rules of the common byte-level vocabularies, keyed by `tokenizer.ggml.pre`: text must be
# cut where it was cut when the merges were learned, or merges apply across those cuts.
_LLAMA3 = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2 = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
SPLIT_RULES = {
    "llama-bpe": _LLAMA3, "llama3": _LLAMA3, "llama-v3": _LLAMA3, "dbrx": _LLAMA3,
    "smaug-bpe": _LLAMA3, "falcon3": _LLAMA3, "qwen2": _QWEN2, "deepseek-r1-qwen": _QWEN2,
}
GPT2_STYLE = ("gpt-2", "default")  # GPT-2's own regex, inside the ByteLevel pre-tokenizer


def _gpt2_byte_table() -> dict[int, str]:
    # The standard table: printable Latin-1 bytes map to themselves, the rest to 256 + n.
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
            *range(ord("®"), ord("ÿ") + 1)]
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def _pre_tokenizer(pre: str | None):
    if pre == "smollm":
        # llama.cpp's smollm rule: each digit alone, then GPT-2's regex. (transformers uses
        # GPT-2's regex alone; SmolLM2's vocabulary has no multi-digit token, so ids agree.)
        return pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ])
    if pre in SPLIT_RULES:
        return pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(SPLIT_RULES[pre]), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    if pre is None or pre in GPT2_STYLE:
        return pre_tokenizers.ByteLevel(add_prefix_space=False)
    known = ", ".join(sorted({"smollm", *GPT2_STYLE, *SPLIT_RULES}))
    raise TokenizerError(
        f"GGUF pre-tokenizer {pre!r} is not supported (lmstack knows {known}); "
        "load the model's Hugging Face folder instead"
    )


def _byte_level_backend(meta: Mapping[str, Any], tokens: list[str]) -> tuple[Backend, set[str]]:
    """GPT-2-style byte-level BPE: the file lists the merges; returns the backend and its
    alphabet of token characters."""
    # Some files store added tokens as plain text; the BPE model needs them byte-spelled.
    spell = _gpt2_byte_table()
    alphabet = set(spell.values())
    vocab = {
        (t if set(t) <= alphabet else "".join(spell[b] for b in t.encode("utf-8"))): i
        for i, t in enumerate(tokens)
    }
    merges = [tuple(m.split(" ", 1)) for m in meta.get("tokenizer.ggml.merges") or []]
    backend = Backend(BPE(vocab, merges, dropout=None, continuing_subword_prefix="",
                          end_of_word_suffix="", fuse_unk=False))
    backend.pre_tokenizer = _pre_tokenizer(meta.get("tokenizer.ggml.pre"))
    backend.decoder = decoders.ByteLevel()
    return backend, alphabet


def merges_from_scores(tokens: list[str], scores: list[float]) -> list[tuple[str, str]]:
    """SentencePiece BPE files list no merges, only scored pieces: every split of a piece into
    two pieces of the vocabulary is a merge, applied best score first (ties: longer left, then
    longer right piece), as transformers' `generate_merges` recovers them."""
    vocab = {t: i for i, t in enumerate(tokens)}
    found = []
    for piece, score in dict(zip(tokens, scores, strict=True)).items():
        pairs = [(piece[:k], piece[k:]) for k in range(1, len(piece))
                 if piece[:k] in vocab and piece[k:] in vocab]
        found += [(a, b, score) for a, b in sorted(pairs, key=lambda p: (vocab[p[0]], vocab[p[1]]))]
    found.sort(key=lambda m: (m[2], len(m[0]), len(m[1])), reverse=True)
    return [(a, b) for a, b, _ in found]


def _sentencepiece_backend(meta: Mapping[str, Any], tokens: list[str]) -> Backend:
    """Llama/Mistral-style SentencePiece BPE: '▁' marks a space, unknown text falls back to
    <0xNN> byte tokens (as transformers' LlamaTokenizer builds it)."""
    scores = list(meta.get("tokenizer.ggml.scores") or [0.0] * len(tokens))
    merges = ([tuple(m.split(" ", 1)) for m in meta["tokenizer.ggml.merges"]]
              if meta.get("tokenizer.ggml.merges") else merges_from_scores(tokens, scores))
    vocab = {t: i for i, t in enumerate(tokens)}
    backend = Backend(BPE(vocab, merges, dropout=None, fuse_unk=True, byte_fallback=True))
    prefix = bool(meta.get("tokenizer.ggml.add_space_prefix", True))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement="▁", prepend_scheme="first" if prefix else "never", split=False)
    steps = [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]
    backend.decoder = decoders.Sequence(steps + [decoders.Strip(" ", 1, 0)] * prefix)
    return backend


def tokenizer_from_gguf(meta: Mapping[str, Any]) -> Tokenizer:
    """The Tokenizer a GGUF's metadata describes (`meta`: key -> decoded value)."""
    kind = meta.get("tokenizer.ggml.model")
    tokens: list[str] = list(meta.get("tokenizer.ggml.tokens") or [])
    if kind == "gpt2":
        backend, alphabet = _byte_level_backend(meta, tokens)
    elif kind == "llama":
        backend, alphabet = _sentencepiece_backend(meta, tokens), None
    else:
        raise TokenizerError(
            f"GGUF tokenizer model {kind!r} is not supported, only byte-level BPE ('gpt2') and "
            "SentencePiece BPE ('llama'); load the model's Hugging Face folder instead"
        )
    vocab = backend.get_vocab()
    types = list(meta.get("tokenizer.ggml.token_type") or [NORMAL] * len(tokens))
    # Control tokens (<|im_end|>) stay whole and special; user-defined ones (<think>) stay
    # whole but are ordinary text. A control token spelled outside the byte alphabet is a
    # llama.cpp mislabel (transformers skips it too): adding it would grow the vocabulary.
    control = [t for t, k in zip(tokens, types, strict=False)
               if k == CONTROL and (alphabet is None or set(t) <= alphabet)]
    backend.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in control])
    user = [t for t, k in zip(tokens, types, strict=False) if k == USER_DEFINED and t in vocab]
    backend.add_tokens([AddedToken(t, special=False, normalized=False) for t in user])

    special = {}
    for name, key in (("bos_token", "bos"), ("eos_token", "eos"), ("unk_token", "unknown"),
                      ("pad_token", "padding")):
        index = meta.get(f"tokenizer.ggml.{key}_token_id")
        if index is not None and 0 <= int(index) < len(tokens):
            special[name] = tokens[int(index)]
    config = TokenizerConfig(
        special_tokens=special,
        additional_special_tokens=[t for t in control if t not in special.values()],
        # llama.cpp adds BOS to a SentencePiece vocabulary unless the file says otherwise.
        add_bos_token=bool(meta.get("tokenizer.ggml.add_bos_token", kind == "llama")),
        add_eos_token=bool(meta.get("tokenizer.ggml.add_eos_token", False)),
        chat_template=meta.get("tokenizer.chat_template"),
        padding_side="left" if kind == "llama" else "right",  # as transformers' LlamaTokenizer
    )
    return Tokenizer(backend, config)


def _pre_name(pre: dict[str, Any] | None) -> str:
    """Which `tokenizer.ggml.pre` a backend's pre-tokenizer is (the inverse of _pre_tokenizer)."""
    steps = (pre or {}).get("pretokenizers", [pre] if pre else [])
    kinds = [s.get("type") for s in steps]
    if kinds == ["ByteLevel"] and steps[0].get("use_regex", True):
        return "gpt-2"
    if kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits"):
        return "smollm"
    if kinds == ["Split", "ByteLevel"]:
        rule = steps[0].get("pattern", {}).get("Regex")
        for name, known in SPLIT_RULES.items():
            if rule == known:
                return name
    raise TokenizerError(
        f"this tokenizer's pre-tokenizer ({' + '.join(map(str, kinds)) or 'none'}) has no "
        "GGUF name; export supports GPT-2, SmolLM, Llama-3 and Qwen2 byte-level BPE"
    )


def gguf_tokenizer_metadata(tokenizer: Tokenizer, vocab_size: int) -> dict[str, Any]:
    """tokens, token types, merges, pre name, special ids, flags and chat template of a
    byte-level BPE Tokenizer, padded with unused tokens to the model's `vocab_size` rows."""
    state = json.loads(tokenizer.backend.to_str())
    model = state["model"]
    if model.get("type") != "BPE" or "ByteLevel" not in json.dumps(state.get("decoder")):
        raise TokenizerError("only byte-level BPE tokenizers export to GGUF (as llama.cpp's "
                             "'gpt2' model); this one is " + str(model.get("type")))
    pre = _pre_name(state.get("pre_tokenizer"))
    size = max(vocab_size, len(tokenizer))
    tokens = [f"[PAD{i}]" for i in range(size)]
    types = [UNUSED] * size
    for token, index in model["vocab"].items():
        tokens[index], types[index] = token, NORMAL
    for index, added in tokenizer.backend.get_added_tokens_decoder().items():
        tokens[index] = added.content
        types[index] = CONTROL if added.special else USER_DEFINED
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    template = tokenizer.config.chat_template
    if isinstance(template, dict):
        template = template.get("default")
    ids = {key: getattr(tokenizer, f"{name}_token_id")
           for key, name in (("bos", "bos"), ("eos", "eos"), ("unknown", "unk"), ("padding", "pad"))}
    return {"tokens": tokens, "token_types": types, "merges": merges, "pre": pre,
            "special_ids": {k: v for k, v in ids.items() if v is not None},
            "add_bos": tokenizer.add_bos_token, "add_eos": tokenizer.add_eos_token,
            "chat_template": template}
