"""Training a byte-level BPE tokenizer (GPT-2 style) with the Rust `tokenizers` library.

Follows Sennrich et al. 2016 (BPE for subwords) and Radford et al. 2019 (GPT-2: BPE over the
256 bytes of UTF-8, so any text, Chinese or emoji included, round-trips without an unknown token).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from tokenizers import Tokenizer as Backend
from tokenizers import decoders, models, pre_tokenizers, processors, trainers

from lmstack.fileio import check_text_file
from lmstack.tokenizer.chat_template import CHATML_TEMPLATE
from lmstack.tokenizer.config import TokenizerConfig
from lmstack.tokenizer.errors import TokenizerError
from lmstack.tokenizer.tokenizer import Tokenizer

# Qwen-style defaults: one end-of-text separator for pretraining, two ChatML markers for chat.
DEFAULT_SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
_BYTE_ALPHABET_SIZE = 256


def _untrained_backend() -> Backend:
    backend = Backend(models.BPE())
    # add_prefix_space=False keeps "Hello" and " Hello" distinct, as GPT-2 and Qwen do; the
    # GPT-2 regex splits words, numbers and punctuation before bytes are merged.
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    # Only fixes character offsets; adds no tokens (a base LM sees documents joined by eos).
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    return backend


def _trainer(
    vocab_size: int, special_tokens: Sequence[str], min_frequency: int, show_progress: bool
) -> trainers.BpeTrainer:
    if len(set(special_tokens)) != len(special_tokens):
        raise TokenizerError(f"special_tokens has duplicates: {list(special_tokens)}.")
    smallest = _BYTE_ALPHABET_SIZE + len(special_tokens)
    if vocab_size < smallest:
        raise TokenizerError(
            f"vocab_size={vocab_size} is too small: the 256 byte tokens and "
            f"{len(special_tokens)} special tokens alone need {smallest}; pass vocab_size >= {smallest}."
        )
    return trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(special_tokens),
        # Seeding all 256 bytes guarantees every string is encodable, even bytes unseen in training.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=show_progress,
    )


def _wrap(
    backend: Backend,
    special_tokens: Sequence[str],
    bos_token: str | None,
    eos_token: str | None,
    pad_token: str | None,
    model_max_length: int | None,
) -> Tokenizer:
    specials = list(special_tokens)
    eos = eos_token if eos_token is not None else (specials[0] if specials else None)
    named = {"bos_token": bos_token, "eos_token": eos, "pad_token": pad_token or eos}
    named = {k: v for k, v in named.items() if v is not None}
    for name, token in named.items():
        if backend.token_to_id(token) is None:
            raise TokenizerError(
                f"{name}={token!r} is not among special_tokens {specials}; add it there."
            )
    chat = "<|im_start|>" in specials and "<|im_end|>" in specials
    config = TokenizerConfig(
        tokenizer_class="PreTrainedTokenizerFast",
        special_tokens=named,
        additional_special_tokens=[t for t in specials if t not in named.values()],
        model_max_length=model_max_length,
        chat_template=CHATML_TEMPLATE if chat else None,
        model_input_names=["input_ids", "attention_mask"],
    )
    return Tokenizer(backend, config)


def train_bpe(
    files: Sequence[str | os.PathLike[str]],
    vocab_size: int,
    special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS,
    min_frequency: int = 2,
    show_progress: bool = True,
    *,
    bos_token: str | None = None,
    eos_token: str | None = None,
    pad_token: str | None = None,
    model_max_length: int | None = None,
) -> Tokenizer:
    """Train a byte-level BPE on UTF-8 text files.

    Special tokens get the first ids, in the order given. eos defaults to the first special token
    and pad to eos; bos is unset (GPT-2/Qwen add none). When the ChatML markers are among the
    special tokens, the ChatML chat template is attached.
    """
    if isinstance(files, str | os.PathLike):
        files = [files]
    paths = [Path(f) for f in files]
    if not paths:
        raise TokenizerError("train_bpe needs at least one text file.")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise TokenizerError(
            f"Training files not found: {missing}. Pass paths to UTF-8 text files."
        )
    for p in paths:  # the Rust trainer would stop with a traceback that names no file
        try:
            check_text_file(p)
        except ValueError as e:
            raise TokenizerError(str(e)) from None
    backend = _untrained_backend()
    trainer = _trainer(vocab_size, special_tokens, min_frequency, show_progress)
    backend.train([str(p) for p in paths], trainer)
    return _wrap(backend, special_tokens, bos_token, eos_token, pad_token, model_max_length)


def train_bpe_from_iterator(
    texts: Iterable[str] | Iterator[str],
    vocab_size: int,
    special_tokens: Sequence[str] = DEFAULT_SPECIAL_TOKENS,
    min_frequency: int = 2,
    show_progress: bool = True,
    *,
    bos_token: str | None = None,
    eos_token: str | None = None,
    pad_token: str | None = None,
    model_max_length: int | None = None,
    length: int | None = None,
) -> Tokenizer:
    """Like `train_bpe`, from any iterable of strings (a dataset column, a generator).

    `length` (number of texts), when known, only makes the progress bar accurate.
    """
    if isinstance(texts, str):
        raise TokenizerError("Pass an iterable of strings, not one string (wrap it in a list).")
    backend = _untrained_backend()
    trainer = _trainer(vocab_size, special_tokens, min_frequency, show_progress)
    backend.train_from_iterator(texts, trainer, length=length)
    return _wrap(backend, special_tokens, bos_token, eos_token, pad_token, model_max_length)
