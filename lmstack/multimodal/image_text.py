"""A trained CLIP with its tokenizer: the seam other parts use to embed text and images.

`encode_text(["a handwritten seven"])` gives unit vectors [B, D] in the space the image
encoder shares (what text-to-image conditioning or retrieval needs), `encode_images(x)` the
same for pictures. A folder holds the CLIPModel (config.json + model.safetensors, HF's layout)
and the tokenizer (vocab.txt + tokenizer_config.json) side by side, as a HF CLIP repo does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lmstack.models.clip import CLIPModel
from lmstack.tokenizer.tokenizer import Tokenizer


class ImageTextModel:
    def __init__(self, model: CLIPModel, tokenizer: Tokenizer):
        self.model, self.tokenizer = model.eval(), tokenizer

    @property
    def image_shape(self) -> tuple[int, int, int]:
        v = self.model.config.vision_config
        return v.num_channels, v.image_size, v.image_size

    def pixels(self, images: np.ndarray | Tensor) -> Tensor:
        """images [B, C, H, W] as a float tensor, checked against the shape the model reads."""
        x = torch.as_tensor(np.asarray(images, dtype=np.float32))
        if tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"images are {tuple(x.shape[1:])} (C, H, W) but this model reads "
                             f"{self.image_shape}; resize them first")
        return x

    def tokenize(self, texts: Sequence[str]) -> dict[str, Tensor]:
        n = self.model.config.text_config.max_position_embeddings
        return self.tokenizer(list(texts), padding=True, truncation=True, max_length=n,
                              return_tensors="pt")

    def unknown_words(self, text: str) -> list[str]:
        """Words of `text` outside the vocabulary (they would all read as [UNK])."""
        unk = self.tokenizer.unk_token
        return [w for w in re.findall(r"[A-Za-z]+|\S", text) if unk in self.tokenizer.tokenize(w)]

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str], batch: int = 256) -> Tensor:
        """Unit-length projected text embeddings [B, projection_dim]."""
        out = []
        for i in range(0, len(texts), batch):
            enc = self.tokenize(texts[i:i + batch])
            out.append(self.model.get_text_features(enc["input_ids"], enc["attention_mask"]))
        return F.normalize(torch.cat(out), dim=-1)

    @torch.no_grad()
    def encode_images(self, images: np.ndarray | Tensor, batch: int = 256) -> Tensor:
        """Unit-length projected image embeddings [B, projection_dim]; images [B, C, H, W] in
        [0, 1], the shape the model was trained on."""
        x = self.pixels(images)
        out = [self.model.get_image_features(x[i:i + batch]) for i in range(0, len(x), batch)]
        return F.normalize(torch.cat(out), dim=-1)

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        self.model.save_pretrained(folder)
        self.tokenizer.save(folder)
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> ImageTextModel:
        return cls(CLIPModel.from_pretrained(folder), Tokenizer.from_folder(folder))
