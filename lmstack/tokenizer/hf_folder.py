"""Reading a Hugging Face tokenizer folder: which files to trust, in which order, and why not.

Follows transformers' `AutoTokenizer.from_pretrained`: tokenizer.json first, else the legacy
vocabulary files (BERT vocab.txt, GPT-2 vocab.json + merges.txt), plus tokenizer_config.json.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Literal

from tokenizers import Tokenizer as Backend

from lmstack.tokenizer.config import TokenizerConfig
from lmstack.tokenizer.errors import TokenizerError
from lmstack.tokenizer.vocab_files import byte_level_bpe_from_vocab_json, wordpiece_from_vocab_txt

TOKENIZER_FILE = "tokenizer.json"
Source = Literal["tokenizer.json", "vocab.txt", "vocab.json"]


def read_tokenizer_folder(folder: Path) -> tuple[Backend, TokenizerConfig, Source]:
    """The backend pipeline and settings a folder describes, and which file they came from."""
    if not folder.exists():
        raise TokenizerError(
            f"Tokenizer folder {folder} does not exist. Pass a folder that holds "
            "tokenizer.json (one written by Tokenizer.save or save_pretrained), or train one "
            "with lmstack.tokenizer.train_bpe."
        )
    if not folder.is_dir():
        raise TokenizerError(f"{folder} is a file; pass the folder that contains it instead.")
    config = TokenizerConfig.from_folder(folder)

    if (folder / TOKENIZER_FILE).is_file():
        try:
            backend = Backend.from_file(str(folder / TOKENIZER_FILE))
        except Exception as err:  # the Rust parser raises plain Exceptions
            raise TokenizerError(
                f"{folder / TOKENIZER_FILE} is not a valid tokenizers file ({err}); re-save it "
                "with Tokenizer.save or transformers' save_pretrained."
            ) from err
        # transformers ignores add_bos/eos_token beside a tokenizer.json: its post-processor
        # already says which special tokens wrap a sequence.
        return backend, replace(config, add_bos_token=None, add_eos_token=None), "tokenizer.json"

    if (folder / "vocab.txt").is_file():
        extra = config.extra
        backend = wordpiece_from_vocab_txt(
            folder / "vocab.txt",
            unk_token=config.special_tokens.get("unk_token", "[UNK]"),
            lowercase=bool(extra.get("do_lower_case", True)),
            strip_accents=extra.get("strip_accents"),
            tokenize_chinese_chars=bool(extra.get("tokenize_chinese_chars", True)),
        )
        return backend, config, "vocab.txt"

    if (folder / "vocab.json").is_file() and (folder / "merges.txt").is_file():
        backend = byte_level_bpe_from_vocab_json(
            folder / "vocab.json",
            folder / "merges.txt",
            add_prefix_space=bool(config.extra.get("add_prefix_space", False)),
        )
        return backend, config, "vocab.json"

    found = sorted(p.name for p in folder.iterdir())
    hint = ""
    if "tokenizer.model" in found:
        hint = (
            " It holds a SentencePiece tokenizer.model: convert it once with transformers "
            "(AutoTokenizer.from_pretrained(folder).save_pretrained(folder) writes "
            "tokenizer.json)."
        )
    raise TokenizerError(
        f"No tokenizer files in {folder} (found: {', '.join(found) or 'nothing'}). Expected "
        f"tokenizer.json, or vocab.txt (BERT), or vocab.json + merges.txt (GPT-2).{hint}"
    )
