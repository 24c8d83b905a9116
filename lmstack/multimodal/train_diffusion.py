"""Training recipes for the small diffusion models: class-conditioned digits (8x8 scikit-learn,
28x28 MNIST, in pixels or in an autoencoder's latents) and text-conditioned ones (captions
through a bag of words or a trained CLIP's text tower), each through the one Trainer.

The sizes are chosen to train in minutes on two CPU cores (benchmarks/diffusion.py measures
them); the demo runs the 8x8 recipe for a shorter time. A run sized by the clock times its
first steps and fits the warmup + cosine schedule to the steps the budget holds (a schedule
sized for a million steps would never leave its warmup), and samples from an EMA of the weights.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lmstack.multimodal.autoencoder import AutoEncoder, AutoEncoderConfig, Reconstruction
from lmstack.multimodal.diffusion import Denoising, DiffusionConfig, DiffusionModel, DiffusionSet
from lmstack.multimodal.shapes import DIGIT_WORDS
from lmstack.multimodal.text_condition import BagOfWords, TextEncoder
from lmstack.multimodal.unet import UNetConfig
from lmstack.train.ema import EMA
from lmstack.train.trainer import Trainer

# Widths per resolution: 8 -> 4; 28 -> 14 -> 7; 16 -> 8 -> 4; latents 7 -> 4 (attention at
# the last).
WIDTHS = {7: [32, 64], 8: [32, 64], 16: [32, 64, 64], 28: [32, 64, 64]}
TIMED_STEPS = 3  # steps timed (after one untimed) to size a run by the clock


def digit_class_words() -> list[list[str]]:
    """Each digit's names: "7", "seven", "七", so prompts in either language pick the class."""
    return [[str(d), DIGIT_WORDS["en"][d], DIGIT_WORDS["zh"][d]] for d in range(10)]


def digit_model(size: int, widths: list[int] | None = None,
                autoencoder: AutoEncoder | None = None) -> DiffusionModel:
    """Class-conditioned digits; with `autoencoder`, the UNet works on its latents."""
    channels, side = 1, size
    if autoencoder is not None:
        channels, side = autoencoder.config.latent_channels, autoencoder.config.latent_size
    unet = UNetConfig(image_size=side, in_channels=channels, channels=widths or WIDTHS[side],
                      num_classes=10)
    config = DiffusionConfig(unet=unet, class_words=digit_class_words())
    return DiffusionModel(config, autoencoder=autoencoder)


def caption_model(captions: list[str], size: int = 16, channels: int = 3,
                  widths: list[int] | None = None,
                  encoder: TextEncoder | None = None) -> DiffusionModel:
    """Text-conditioned: the prompt through `encoder` (e.g. `ClipText(folder)`, a trained
    CLIP's text tower), by default a bag of the training captions' words."""
    encoder = encoder or BagOfWords.from_captions(captions)
    unet = UNetConfig(image_size=size, in_channels=channels, channels=widths or WIDTHS[size],
                      cond_dim=encoder.dim)
    return DiffusionModel(DiffusionConfig(unet=unet, text_encoder=encoder.spec()), encoder)


class EMATrainer(Trainer):
    """The Trainer, plus a weight average of `ema_of` updated after every optimizer step."""

    def __init__(self, *args, ema: EMA | None = None, ema_of: nn.Module | None = None, **kw):
        super().__init__(*args, **kw)
        self.ema, self.ema_of = ema, ema_of

    def train_step(self) -> dict[str, float]:
        stats = super().train_step()
        if self.ema is not None:
            self.ema.update(self.ema_of)
        return stats


def fit_images(model: nn.Module, objective: Any, data: Any, steps: int, out: Path,
               batch: int, lr: float, minutes: float | None = None,
               ema_of: nn.Module | None = None, ema_decay: float = 0.999,
               precision: str = "auto") -> dict[str, Any]:
    """Train on in-memory images (AdamW, 2% warmup then cosine); with `minutes`, `steps` is
    a cap and the run is sized by timing its first steps. With `ema_of`, that module ends
    holding the EMA of its weights. Returns the Trainer's summary plus wall seconds."""
    from lmstack.train.config import OptimizerSection, in_memory_config

    config = in_memory_config(out, steps, batch,
                              OptimizerSection(lr=lr, weight_decay=0.0, betas=(0.9, 0.99)),
                              warmup_steps=max(1, steps // 50), minutes=minutes,
                              log_every=max(1, min(steps, 5000) // 50), precision=precision)
    ema = EMA(ema_of, ema_decay) if ema_of is not None else None
    trainer = EMATrainer(model, objective, data, config, ema=ema, ema_of=ema_of)
    start = time.perf_counter()
    if minutes:
        trainer.train_step()  # the first step picks kernels: not timed
        t0 = time.perf_counter()
        for _ in range(TIMED_STEPS):
            trainer.train_step()
        per_step = (time.perf_counter() - t0) / TIMED_STEPS
        left = minutes * 60 - (time.perf_counter() - start)
        n = min(steps, trainer.step + max(1, int(left / per_step)))
        trainer.set_max_steps(n)
        trainer.scheduler.warmup = max(1, n // 50)
        trainer.elapsed_before = time.perf_counter() - start
    summary = trainer.fit()
    if ema is not None:
        ema.copy_to(ema_of)
    return {**summary, "wall_seconds": time.perf_counter() - start,
            "precision": trainer.precision}


def train_diffusion(model: DiffusionModel, images: np.ndarray, cond: torch.Tensor | None,
                    steps: int, out: Path, batch: int = 64, lr: float = 2e-3,
                    minutes: float | None = None, p_uncond: float = 0.1,
                    ema_decay: float = 0.999) -> dict[str, Any]:
    """Train the UNet to denoise `images` ([N, C, S, S] in [0, 1]: pixels, or latents mapped
    there by `model.data_from_images`); the UNet ends holding its EMA weights."""
    data = DiffusionSet(model.data_from_images(images), cond)
    return fit_images(model, Denoising(model.schedule, p_uncond), data, steps, out, batch, lr,
                      minutes, ema_of=model.unet, ema_decay=ema_decay)


def train_autoencoder(images: np.ndarray, steps: int, out: Path, minutes: float | None = None,
                      config: AutoEncoderConfig | None = None, batch: int = 64,
                      lr: float = 2e-3, seed: int = 0) -> tuple[AutoEncoder, dict[str, Any]]:
    """The latent space for a latent DDPM: an autoencoder trained to reconstruct `images`."""
    torch.manual_seed(seed)
    ae = AutoEncoder(config or AutoEncoderConfig(image_size=images.shape[-1],
                                                 in_channels=images.shape[1]))
    summary = fit_images(ae, Reconstruction(), DiffusionSet(images, None), steps, out, batch,
                         lr, minutes)
    return ae.eval().requires_grad_(False), summary
