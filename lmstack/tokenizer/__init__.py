"""Tokenizers for lmstack: byte-level BPE training, Hugging Face folders, chat templates.

Follows the Hugging Face `tokenizers` library and transformers' tokenizer folder format.
"""

from lmstack.tokenizer.bpe import DEFAULT_SPECIAL_TOKENS, train_bpe, train_bpe_from_iterator
from lmstack.tokenizer.chat_template import CHATML_TEMPLATE, render_chat_template
from lmstack.tokenizer.config import TokenizerConfig
from lmstack.tokenizer.errors import TokenizerError
from lmstack.tokenizer.tokenizer import Tokenizer

__all__ = [
    "CHATML_TEMPLATE",
    "DEFAULT_SPECIAL_TOKENS",
    "Tokenizer",
    "TokenizerConfig",
    "TokenizerError",
    "render_chat_template",
    "train_bpe",
    "train_bpe_from_iterator",
]
