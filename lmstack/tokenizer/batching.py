"""Batch rules: how padding, truncation and max_length combine, and lists -> tensors.

Follows transformers' `PreTrainedTokenizerBase._get_padding_truncation_strategies`, so a call
with the same arguments pads and cuts exactly where transformers would.
"""

from __future__ import annotations

from typing import Any

from lmstack.tokenizer.errors import TokenizerError

TRUNCATION_STRATEGIES = ("longest_first", "only_first", "only_second")
_PADDING_MODES: dict[Any, str | None] = {
    True: "longest",
    "longest": "longest",
    "max_length": "max_length",
    False: None,
    "do_not_pad": None,
}


def resolve_padding_truncation(
    padding: bool | str,
    truncation: bool | str | None,
    max_length: int | None,
    model_max_length: int | None,
) -> tuple[str | None, str | None, int | None]:
    """-> (padding mode or None, truncation strategy or None, length to use)."""
    # Historical transformers behaviour: max_length alone means "truncate to it".
    if max_length is not None and padding is False and truncation is None:
        truncation = True
    if padding not in _PADDING_MODES:
        raise TokenizerError(
            f"padding must be True, False, 'longest' or 'max_length', not {padding!r}."
        )
    pad = _PADDING_MODES[padding]
    if truncation in (None, False, "do_not_truncate"):
        truncate = None
    elif truncation is True:
        truncate = "longest_first"
    elif truncation in TRUNCATION_STRATEGIES:
        truncate = str(truncation)
    else:
        raise TokenizerError(
            f"truncation must be True, False or one of {TRUNCATION_STRATEGIES}, not {truncation!r}."
        )
    if max_length is None and (pad == "max_length" or truncate):
        if model_max_length is None:
            # No known limit: nothing to pad up to or cut down to.
            pad = None if pad == "max_length" else pad
            truncate = None
        else:
            max_length = model_max_length
    return pad, truncate, max_length


def to_tensor(rows: list[list[int]], kind: str) -> Any:
    """Rows of equal length -> a 2-D int64 torch tensor ("pt") or numpy array ("np")."""
    if kind not in ("pt", "np"):
        raise TokenizerError(f"return_tensors must be None, 'pt' or 'np', not {kind!r}.")
    if len({len(row) for row in rows}) > 1:
        raise TokenizerError(
            "Sequences have different lengths and cannot form one tensor; pass padding=True."
        )
    if kind == "pt":
        import torch  # lazily: the tokenizer must not make every import pay for torch

        return torch.tensor(rows, dtype=torch.long)
    import numpy as np

    return np.asarray(rows, dtype=np.int64)
