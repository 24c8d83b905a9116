"""What a text-conditioned diffusion model reads a prompt through: any frozen encoder with
`encode(texts) -> Tensor [B, D]`, and the simplest one, a bag of known words.

Stable Diffusion reads prompts through a frozen CLIP text encoder (Rombach et al. 2022); at this
scale a bag of words already names colour, shape and place. `ClipText` is the other: a trained
CLIP's text tower (lmstack.multimodal.image_text), frozen, as Stable Diffusion uses it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor

# English words, or single CJK characters (Chinese has no spaces between words).
TOKEN = re.compile(r"[a-z0-9]+|[\u4e00-\u9fff]")
STOP_WORDS = {"a", "an", "the", "at", "of", "in", "on", "的"}


class TextEncoder(Protocol):
    dim: int

    def encode(self, texts: list[str]) -> Tensor:
        """[B, dim] float32, one vector per text."""

    def unknown(self, text: str) -> str | None:
        """Why the encoder cannot condition on `text` (None when it can)."""

    def spec(self) -> dict[str, Any]:
        """What config.json stores to rebuild the encoder (see load_text_encoder)."""


def words(text: str) -> list[str]:
    return [w for w in TOKEN.findall(text.lower()) if w not in STOP_WORDS]


class BagOfWords:
    """A multi-hot vector over the captions' vocabulary, scaled to unit length. Frozen by
    construction (nothing to train); the UNet's condition MLP learns what each word means."""

    def __init__(self, vocab: list[str]):
        self.vocab = sorted(set(vocab))
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.dim = len(self.vocab)

    @classmethod
    def from_captions(cls, captions: list[str]) -> BagOfWords:
        return cls([w for c in captions for w in words(c)])

    def encode(self, texts: list[str]) -> Tensor:
        out = torch.zeros(len(texts), self.dim)
        for row, text in enumerate(texts):
            for w in words(text):
                if w in self.index:
                    out[row, self.index[w]] = 1.0
        return out / out.norm(dim=1, keepdim=True).clamp(min=1.0)

    def unknown(self, text: str) -> str | None:
        if not any(w in self.index for w in words(text)):
            return (f"the prompt {text[:60]!r} holds none of the words this model was trained "
                    f"on; use some of: {', '.join(self.vocab[:30])}")
        return None

    def spec(self) -> dict[str, Any]:
        return {"kind": "bag_of_words", "vocab": self.vocab}


class ClipText:
    """A trained CLIP folder's text tower: unit-length projected embeddings [B, D], the space
    its images share. The folder is referenced, not copied: keep it where the model says."""

    def __init__(self, folder: str | Path):
        from lmstack.multimodal.image_text import ImageTextModel

        self.folder = Path(folder).resolve()
        if not (self.folder / "config.json").is_file():
            raise ValueError(f"no CLIP folder at {self.folder} (config.json missing); train one "
                             "with benchmarks/clip.py or `lmstack demo --stages clip`")
        self.clip = ImageTextModel.load(self.folder)
        self.dim = self.clip.model.config.projection_dim

    def encode(self, texts: list[str]) -> Tensor:
        return self.clip.encode_text(texts)

    def unknown(self, text: str) -> str | None:
        if missing := self.clip.unknown_words(text):
            return (f"the prompt has words this CLIP never learned ({', '.join(missing[:10])}); "
                    "describe the picture with words from its captions")
        return None

    def spec(self) -> dict[str, Any]:
        return {"kind": "clip", "folder": str(self.folder)}


def load_text_encoder(spec: dict[str, Any]) -> TextEncoder:
    """The encoder a saved model names in its config.json."""
    if spec.get("kind") == "bag_of_words":
        return BagOfWords(spec["vocab"])
    if spec.get("kind") == "clip":
        return ClipText(spec["folder"])
    raise ValueError(f"unknown text encoder {spec.get('kind')!r} in config.json; this lmstack "
                     "knows bag_of_words and clip")
