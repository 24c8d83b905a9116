"""lmstack: the large-language-model stack as one small, readable, tested Python codebase."""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"


def load(folder: str | Path, dtype=None, device=None):
    """Load a Hugging Face model folder, a GGUF file or a short name (`smollm2`): returns
    (model, tokenizer or None if it has none)."""
    from lmstack.models.default import resolve_model_path
    from lmstack.models.hub import load_model
    from lmstack.tokenizer import Tokenizer, TokenizerError

    folder = resolve_model_path(folder)
    if folder.suffix.lower() == ".gguf":
        from lmstack.models.gguf import load_gguf

        return load_gguf(folder, dtype=dtype, device=device)
    from lmstack.quant.folder import is_quantized_folder, load_quantized

    if is_quantized_folder(folder):  # written by `lmstack quant` (lmstack/quant/folder.py)
        return load_quantized(folder)
    model = load_model(folder, dtype=dtype, device=device)
    try:
        tokenizer = Tokenizer.from_folder(folder)
    except TokenizerError:
        tokenizer = None
    return model, tokenizer
