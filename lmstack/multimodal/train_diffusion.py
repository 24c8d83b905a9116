"""Training recipes for the small diffusion models: class-conditioned digits (8x8 scikit-learn,
28x28 MNIST) and caption-conditioned shapes, each through the one Trainer.

The sizes are chosen to train in minutes on two CPU cores (benchmarks/diffusion.py measures
them); the demo runs the 8x8 recipe for a shorter time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from lmstack.multimodal.diffusion import Denoising, DiffusionConfig, DiffusionModel, DiffusionSet
from lmstack.multimodal.shapes import DIGIT_WORDS
from lmstack.multimodal.text_condition import BagOfWords, TextEncoder
from lmstack.multimodal.unet import UNetConfig

# Widths per resolution: 8 -> 4; 28 -> 14 -> 7; 16 -> 8 -> 4 (attention at the last).
WIDTHS = {8: [32, 64], 16: [32, 64, 64], 28: [32, 64, 64]}


def digit_class_words() -> list[list[str]]:
    """Each digit's names: "7", "seven", "七", so prompts in either language pick the class."""
    return [[str(d), DIGIT_WORDS["en"][d], DIGIT_WORDS["zh"][d]] for d in range(10)]


def digit_model(size: int, widths: list[int] | None = None) -> DiffusionModel:
    unet = UNetConfig(image_size=size, in_channels=1, channels=widths or WIDTHS[size],
                      num_classes=10)
    return DiffusionModel(DiffusionConfig(unet=unet, class_words=digit_class_words()))


def caption_model(captions: list[str], size: int = 16, channels: int = 3,
                  widths: list[int] | None = None,
                  encoder: TextEncoder | None = None) -> DiffusionModel:
    """Text-conditioned: the prompt through `encoder` (e.g. `ClipText(folder)`, a trained
    CLIP's text tower), by default a bag of the training captions' words."""
    encoder = encoder or BagOfWords.from_captions(captions)
    unet = UNetConfig(image_size=size, in_channels=channels, channels=widths or WIDTHS[size],
                      cond_dim=encoder.dim)
    return DiffusionModel(DiffusionConfig(unet=unet, text_encoder=encoder.spec()), encoder)


def train_diffusion(model: DiffusionModel, images: np.ndarray, cond: torch.Tensor | None,
                    steps: int, out: Path, batch: int = 64, lr: float = 2e-3,
                    minutes: float | None = None, p_uncond: float = 0.1) -> dict[str, Any]:
    """Train with the Trainer (AdamW, warmup + cosine decay); returns its summary."""
    from lmstack.train.config import (
        DataSection,
        ModelSection,
        OptimizerSection,
        ScheduleSection,
        TrainConfig,
        TrainingSection,
    )
    from lmstack.train.trainer import Trainer

    # Images need no tokenizer or shards: the data section stays empty (model_construct skips
    # its "shards or files" check), as for the CNNs.
    config = TrainConfig.model_construct(
        model=ModelSection(), data=DataSection.model_construct(),
        optimizer=OptimizerSection(lr=lr, weight_decay=0.0, betas=(0.9, 0.99)),
        schedule=ScheduleSection(warmup_steps=max(1, steps // 50)),
        training=TrainingSection(out_dir=out, max_steps=steps, max_minutes=minutes,
                                 micro_batch_size=batch, log_every=max(1, steps // 50),
                                 eval_every=10**9, save_every=10**9, keep_last=1,
                                 progress=False))
    trainer = Trainer(model, Denoising(model.schedule, p_uncond), DiffusionSet(images, cond),
                      config)
    return trainer.fit()
