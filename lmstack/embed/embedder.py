"""Sentence embeddings from a BERT-family encoder: pool the token vectors, scale to unit length.

Follows Sentence-BERT (Reimers & Gurevych, 2019) and the sentence-transformers Pooling and
Normalize modules, whose output on the same weights is the parity yardstick.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lmstack.models.bert import mean_pool

POOLINGS = ("mean", "cls")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@functools.cache
def fastest_dtype(hidden: int, intermediate: int, margin: float = 0.9) -> torch.dtype:
    """bfloat16 where an encoder-shaped matmul ([512 tokens, hidden] @ [hidden, intermediate])
    runs faster in it than in float32 by `margin`, else float32. Measured, not assumed from the
    CPU's flags: with AMX or AVX512-BF16 bf16 wins, with AVX2 alone it is emulated and slower.
    The fastest of several rounds counts (other jobs only slow a round down); cached per shape.
    """
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(512, hidden, generator=g), torch.randn(hidden, intermediate, generator=g)
    best = {}
    for dtype in (torch.float32, torch.bfloat16):
        a, b = x.to(dtype), w.to(dtype)
        a @ b  # warm-up: the first call picks kernels
        rounds = []
        for _ in range(8):
            start = time.perf_counter()
            a @ b
            rounds.append(time.perf_counter() - start)
        best[dtype] = min(rounds)
    return torch.bfloat16 if best[torch.bfloat16] < margin * best[torch.float32] else torch.float32


def pool(hidden: Tensor, attention_mask: Tensor, pooling: str) -> Tensor:
    """One vector per sequence: the mean over real tokens, or the first ([CLS]) token."""
    if pooling == "cls":
        return hidden[:, 0]
    if pooling == "mean":
        return mean_pool(hidden, attention_mask, normalize=False)
    raise ValueError(f"pooling must be one of {POOLINGS}, not {pooling!r}")


def read_sentence_transformers_config(folder: Path) -> dict:
    """Pooling mode and max length from a sentence-transformers folder's own files, if any."""
    found: dict = {}
    pooling_file = folder / "1_Pooling" / "config.json"
    if pooling_file.is_file():
        cfg = json.loads(pooling_file.read_text(encoding="utf-8"))
        if cfg.get("pooling_mode_cls_token"):
            found["pooling"] = "cls"
        elif cfg.get("pooling_mode_mean_tokens"):
            found["pooling"] = "mean"
    st_file = folder / "sentence_bert_config.json"
    if st_file.is_file():
        length = json.loads(st_file.read_text(encoding="utf-8")).get("max_seq_length")
        if length:
            found["max_length"] = int(length)
    # The Normalize module sits in modules.json; without that file we cannot tell, so keep the
    # unit-length default that cosine search wants.
    modules_file = folder / "modules.json"
    if modules_file.is_file():
        kinds = [m.get("type", "") for m in json.loads(modules_file.read_text(encoding="utf-8"))]
        found["normalize"] = any(k.endswith("Normalize") for k in kinds)
    return found


class Embedder:
    """`encode(texts) -> float32 array [N, dim]` from an lmstack encoder and its tokenizer.

    dtype: "float32", "bfloat16" (the encoder's weights are converted in place; vectors stay
    float32), or "auto": bfloat16 where this CPU runs it faster (`fastest_dtype`).
    progress: a rich progress bar over the batches, shown only when stderr is a terminal.
    scripts: the writing systems the model was trained to read ("latin", "cjk", "other": see
    lmstack.retrieve.scripts), so a hybrid retriever can skip its vote on text it cannot read;
    None (the default) when unknown, which trusts it everywhere.
    """

    def __init__(self, model, tokenizer, pooling: str = "mean", normalize: bool = True,
                 max_length: int = 512, batch_size: int = 32, dtype: str = "float32",
                 progress: bool = False, scripts: tuple[str, ...] | None = None) -> None:
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, not {pooling!r}")
        if tokenizer is None:
            raise ValueError("an Embedder needs the encoder's tokenizer (the folder had none)")
        # Task models (masked LM, classifiers) keep the encoder under `.bert`; pool its output.
        self.encoder = getattr(model, "bert", model)
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.normalize = normalize
        self.max_length = max_length
        self.batch_size = batch_size
        self.progress = progress
        self.scripts = scripts
        if dtype not in (*DTYPES, "auto"):
            raise ValueError(f"dtype must be one of {(*DTYPES, 'auto')}, not {dtype!r}")
        cfg = self.encoder.config
        self.dtype = (fastest_dtype(cfg.hidden_size, cfg.intermediate_size) if dtype == "auto"
                      else DTYPES[dtype])
        self.encoder.to(self.dtype)

    @classmethod
    def from_folder(cls, folder: str | Path, **overrides) -> Embedder:
        """Load with `lmstack.load`; pooling/length/normalisation come from the folder's
        sentence-transformers files where present, then from `overrides`."""
        from lmstack import load

        model, tokenizer = load(folder)
        settings = read_sentence_transformers_config(Path(folder)) | overrides
        return cls(model, tokenizer, **settings)

    @property
    def dim(self) -> int:
        return self.encoder.config.hidden_size

    @torch.inference_mode()
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        texts = [texts] if isinstance(texts, str) else list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        self.encoder.eval()
        # Longest first, in character length: neighbours in a batch then need little padding,
        # and a too-large batch fails on the first step rather than the last.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        param = next(self.encoder.parameters())
        starts = range(0, len(order), self.batch_size)
        with self._bar(len(starts)) as advance:
            for start in starts:
                self._encode_rows(texts, order[start:start + self.batch_size], out, param.device)
                advance()
        return out

    @contextlib.contextmanager
    def _bar(self, total: int):
        """Yields `advance()`: a rich bar's step when shown, else a no-op."""
        if not (self.progress and sys.stderr.isatty()):
            yield lambda: None
            return
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task("embedding", total=total)
            yield lambda: bar.advance(task)

    def _encode_rows(self, texts: list[str], rows: list[int], out: np.ndarray,
                     device: torch.device) -> None:
        """Encode texts[rows] as one padded batch into out[rows]."""
        batch = self.tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                               max_length=self.max_length, return_tensors="pt")
        ids = batch["input_ids"].to(device)                  # [B, T]
        mask = batch["attention_mask"].to(device)            # [B, T]
        types = batch.get("token_type_ids")
        types = torch.zeros_like(ids) if types is None else types.to(device)
        hidden, _ = self.encoder(ids, mask, types)           # [B, T, H]
        vectors = pool(hidden.float(), mask, self.pooling)   # [B, H]
        if self.normalize:
            vectors = torch.nn.functional.normalize(vectors, dim=-1)
        out[rows] = vectors.cpu().numpy()
