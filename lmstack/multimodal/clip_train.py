"""Train a small CLIP with the Trainer on captioned digits or shapes, and measure it.

The recipes the README table, the benchmark and the demo share: a ViT (or CNN) image tower and
a 2-layer causal text tower, 64 wide, on 8x8 digits (patches of 2 pixels) or 16x16 shapes
(patches of 4), captions half English, half Chinese. Evaluation is on images never trained on:
the held-out fifth of the digits; new drawings of the seen colour-shape combinations; and the
HELD_OUT combinations (a red square) the model never saw together, separately.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from lmstack.models.clip import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPVisionConfig
from lmstack.multimodal.captioned import CaptionedImages
from lmstack.multimodal.image_text import ImageTextModel
from lmstack.multimodal.retrieval_metrics import recall_at_k, zero_shot
from lmstack.multimodal.shapes import ALL_SHAPES, Shape, digit_caption


def small_clip_config(vocab_size: int, image_size: int, channels: int, patch: int,
                      encoder: str = "vit", width: int = 64, layers: int = 2,
                      heads: int = 4) -> CLIPConfig:
    """A CLIP a laptop trains in minutes; the tokenizer's [SEP] (id 3) is the end-of-text."""
    text = CLIPTextConfig(vocab_size=vocab_size, hidden_size=width, intermediate_size=4 * width,
                          num_hidden_layers=layers, num_attention_heads=heads,
                          max_position_embeddings=32, eos_token_id=3)
    vision = CLIPVisionConfig(hidden_size=width, intermediate_size=4 * width,
                              num_hidden_layers=layers, num_attention_heads=heads,
                              image_size=image_size, patch_size=patch, num_channels=channels,
                              encoder=encoder, cnn_widths=[32, 64])
    return CLIPConfig(text, vision, projection_dim=width)


def image_train_config(out: str | Path, steps: int, batch: int, lr: float,
                       minutes: float | None, seed: int):
    """The Trainer's config for in-memory image data: AdamW, 10% warmup then cosine, no
    checkpoints but the last."""
    from lmstack.train.config import OptimizerSection, in_memory_config

    return in_memory_config(out, steps, batch,
                            OptimizerSection(lr=lr, weight_decay=0.05, betas=(0.9, 0.98)),
                            warmup_steps=max(1, steps // 10), minutes=minutes, seed=seed)


def train_clip(data: CaptionedImages, config: CLIPConfig, out: str | Path, steps: int,
               batch: int = 128, lr: float = 2e-3, minutes: float | None = None,
               seed: int = 0) -> tuple[ImageTextModel, dict[str, Any]]:
    """AdamW with warmup + cosine through lmstack's Trainer; returns the model and its summary."""
    from lmstack.multimodal.clip_loss import CLIPObjective
    from lmstack.train.trainer import Trainer

    torch.manual_seed(seed)
    model = CLIPModel(config)
    tc = image_train_config(out, steps, batch, lr, minutes, seed)
    summary = Trainer(model, CLIPObjective(), data, tc).fit()
    return ImageTextModel(model, data.tokenizer), summary


def evaluate_digits(itm: ImageTextModel, images: np.ndarray, labels: np.ndarray
                    ) -> dict[str, float]:
    """Per language: zero-shot accuracy over the ten captions, image->text and text->image
    recall@1/5 (text queries: the ten captions; gallery: the held-out images)."""
    image_emb = itm.encode_images(images)
    result = {}
    for lang in ("en", "zh"):
        text_emb = itm.encode_text([digit_caption(d, lang) for d in range(10)])
        result[f"{lang}_zero_shot"], _ = zero_shot(image_emb, labels.tolist(), text_emb)
        i2t = recall_at_k(image_emb, labels.tolist(), text_emb, range(10))
        t2i = recall_at_k(text_emb, range(10), image_emb, labels.tolist())
        result |= {f"{lang}_i2t_r{k}": v for k, v in i2t.items()}
        result |= {f"{lang}_t2i_r{k}": v for k, v in t2i.items()}
    return {k: round(v, 4) for k, v in result.items()}


def evaluate_shapes(itm: ImageTextModel, images: np.ndarray, shapes: list[Shape],
                    others: tuple[np.ndarray, list[Shape]] | None = None) -> dict[str, float]:
    """Per language, against all 48 captions (unseen combinations included): zero-shot
    accuracy of the whole caption and of its colour, shape and position, and image->text
    recall@1/5, for `images`; text->image recall@1/5 with the captions of the combinations in
    `images` as queries, searching `images` plus `others` (pictures of other combinations:
    among unseen combinations alone, colour and place would give the answer away)."""
    image_emb = itm.encode_images(images)
    truth = [ALL_SHAPES.index(s) for s in shapes]
    present = sorted(set(truth))
    gallery, gallery_truth = image_emb, truth
    if others is not None:
        gallery = torch.cat([image_emb, itm.encode_images(others[0])])
        gallery_truth = truth + [ALL_SHAPES.index(s) for s in others[1]]
    result = {}
    for lang in ("en", "zh"):
        text_emb = itm.encode_text([s.caption(lang) for s in ALL_SHAPES])
        acc, pred = zero_shot(image_emb, truth, text_emb)
        guessed = [ALL_SHAPES[int(i)] for i in pred]
        result[f"{lang}_caption"] = acc
        for attr in ("colour", "shape", "position"):
            result[f"{lang}_{attr}"] = float(np.mean([getattr(g, attr) == getattr(s, attr)
                                                      for g, s in zip(guessed, shapes)]))
        i2t = recall_at_k(image_emb, truth, text_emb, range(len(ALL_SHAPES)))
        t2i = recall_at_k(text_emb[present], present, gallery, gallery_truth)
        result |= {f"{lang}_i2t_r{k}": v for k, v in i2t.items()}
        result |= {f"{lang}_t2i_r{k}": v for k, v in t2i.items()}
    return {k: round(v, 4) for k, v in result.items()}
