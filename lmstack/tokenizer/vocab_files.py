"""Tokenizer pipelines rebuilt from legacy vocab files: BERT vocab.txt, GPT-2 vocab.json+merges.

Follows the pipelines transformers (v5) builds in `BertTokenizer` and `GPT2Tokenizer`, which in
turn follow Devlin et al. 2019 (BERT WordPiece) and Radford et al. 2019 (GPT-2 byte-level BPE).
"""

from __future__ import annotations

from pathlib import Path

from tokenizers import Tokenizer as Backend
from tokenizers import decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import BPE, WordPiece

from lmstack.tokenizer.errors import TokenizerError


def special_tokens_template(
    bos: tuple[str, int] | None, eos: tuple[str, int] | None
) -> processors.TemplateProcessing:
    """`[bos] $A [eos]` (and the pair form) as transformers' `add_bos_token`/`add_eos_token` do.

    Passing None for both still yields a template: the pair then gets type id 1 on its second
    segment, matching what transformers installs when a tokenizer has no post-processor.
    """

    def tag(token: tuple[str, int] | None, type_id: int) -> list[str]:
        return [f"{token[0]}:{type_id}"] if token else []

    single = [*tag(bos, 0), "$A:0", *tag(eos, 0)]
    pair = [*single, *tag(bos, 1), "$B:1", *tag(eos, 1)]
    specials = [token for token in (bos, eos) if token]
    return processors.TemplateProcessing(
        single=" ".join(single), pair=" ".join(pair), special_tokens=specials
    )


def bert_template(cls: tuple[str, int], sep: tuple[str, int]) -> processors.TemplateProcessing:
    """`[CLS] A [SEP]` and `[CLS] A [SEP] B [SEP]` with segment (token type) ids 0 then 1."""
    return processors.TemplateProcessing(
        single=f"{cls[0]}:0 $A:0 {sep[0]}:0",
        pair=f"{cls[0]}:0 $A:0 {sep[0]}:0 $B:1 {sep[0]}:1",
        special_tokens=[cls, sep],
    )


def wordpiece_from_vocab_txt(
    vocab_txt: str | Path,
    *,
    unk_token: str = "[UNK]",
    lowercase: bool = True,
    strip_accents: bool | None = None,
    tokenize_chinese_chars: bool = True,
) -> Backend:
    """BERT's WordPiece pipeline from a `vocab.txt` (one token a line, the line number is its id).

    The post-processor is left to the caller because it needs the final [CLS]/[SEP] ids.
    """
    try:
        vocab = WordPiece.read_file(str(vocab_txt))
    except Exception as err:  # the Rust reader raises plain Exceptions
        raise TokenizerError(f"Cannot read WordPiece vocabulary {vocab_txt}: {err}") from err
    if unk_token not in vocab:
        raise TokenizerError(
            f"{vocab_txt} has no unknown token {unk_token!r}; set 'unk_token' in "
            "tokenizer_config.json to the one this vocabulary uses."
        )
    backend = Backend(WordPiece(vocab, unk_token=unk_token, max_input_chars_per_word=100))
    # strip_accents=None means "follow lowercase", as in the original BERT code.
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True,
        handle_chinese_chars=tokenize_chinese_chars,
        strip_accents=strip_accents,
        lowercase=lowercase,
    )
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix="##")
    return backend


def byte_level_bpe_from_vocab_json(
    vocab_json: str | Path, merges_txt: str | Path, *, add_prefix_space: bool = False
) -> Backend:
    """GPT-2's byte-level BPE pipeline from `vocab.json` + `merges.txt`."""
    try:
        vocab, merges = BPE.read_file(str(vocab_json), str(merges_txt))
    except Exception as err:  # the Rust reader raises plain Exceptions
        raise TokenizerError(
            f"Cannot read BPE files {vocab_json} / {merges_txt}: {err}. vocab.json must map "
            "token -> id and merges.txt hold one 'left right' pair a line."
        ) from err
    # Byte-level BPE never needs an unknown token: all 256 bytes are in the vocabulary.
    backend = Backend(
        BPE(
            vocab,
            merges,
            dropout=None,
            continuing_subword_prefix="",
            end_of_word_suffix="",
            fuse_unk=False,
        )
    )
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
    backend.decoder = decoders.ByteLevel()
    return backend
