"""Sentence embeddings from a BERT-family encoder: pool the token vectors, scale to unit length.

Follows Sentence-BERT (Reimers & Gurevych, 2019) and the sentence-transformers Pooling and
Normalize modules, whose output on the same weights is the parity yardstick.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from lmstack.models.bert import mean_pool

POOLINGS = ("mean", "cls")


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
    """`encode(texts) -> float32 array [N, dim]` from an lmstack encoder and its tokenizer."""

    def __init__(self, model, tokenizer, pooling: str = "mean", normalize: bool = True,
                 max_length: int = 512, batch_size: int = 32) -> None:
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
        for start in range(0, len(order), self.batch_size):
            rows = order[start:start + self.batch_size]
            batch = self.tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                                   max_length=self.max_length, return_tensors="pt")
            ids = batch["input_ids"].to(param.device)
            mask = batch["attention_mask"].to(param.device)
            types = batch.get("token_type_ids")
            types = torch.zeros_like(ids) if types is None else types.to(param.device)
            hidden, _ = self.encoder(ids, mask, types)
            vectors = pool(hidden.float(), mask, self.pooling)
            if self.normalize:
                vectors = torch.nn.functional.normalize(vectors, dim=-1)
            out[rows] = vectors.cpu().numpy()
        return out
