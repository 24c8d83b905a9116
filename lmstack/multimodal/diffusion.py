"""A denoising diffusion model: the UNet, its noise schedule and its condition (a class label
or a text through a frozen encoder), trained by the Trainer to predict the noise, sampled with
DDPM or DDIM and classifier-free guidance, saved as config.json + model.safetensors. With an
autoencoder it is a latent diffusion model: the UNet denoises latents, the decoder draws them.

References: Ho et al. 2020 (DDPM), Song et al. 2021 (DDIM), Ho & Salimans 2022 (classifier-free
guidance: drop the condition in training, mix the two predictions when sampling), Rombach et
al. 2022 (latent diffusion).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from lmstack.fileio import atomic_write, atomic_write_text
from lmstack.multimodal.autoencoder import AutoEncoder, AutoEncoderConfig
from lmstack.multimodal.schedulers import NoiseSchedule
from lmstack.multimodal.text_condition import TextEncoder, load_text_encoder, words
from lmstack.multimodal.unet import UNet, UNetConfig


@dataclass
class DiffusionConfig:
    unet: UNetConfig = field(default_factory=UNetConfig)
    train_steps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"  # the cosine schedule suits small images best
    # Class models: the words that name each class ("7", "seven", "七"), for prompts.
    class_words: list[list[str]] = field(default_factory=list)
    text_encoder: dict[str, Any] | None = None  # text models: load_text_encoder's spec
    autoencoder: dict[str, Any] | None = None   # latent models: the AutoEncoderConfig


class DiffusionModel(nn.Module):
    """forward(x_t, t, cond, keep) -> predicted noise; images live in [-1, 1] inside."""

    def __init__(self, config: DiffusionConfig, text_encoder: TextEncoder | None = None,
                 autoencoder: AutoEncoder | None = None):
        super().__init__()
        if autoencoder is not None:
            config.autoencoder = asdict(autoencoder.config)
        elif config.autoencoder:
            autoencoder = AutoEncoder(AutoEncoderConfig(**config.autoencoder))
        self.config = config
        # Frozen: trained before the UNet, its latent space is the UNet's data.
        self.autoencoder = autoencoder.eval().requires_grad_(False) if autoencoder else None
        self.unet = UNet(config.unet)
        self.schedule = NoiseSchedule(config.train_steps, config.beta_schedule)
        self.text_encoder = text_encoder or (load_text_encoder(config.text_encoder)
                                             if config.text_encoder else None)

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None,
                keep: Tensor | None = None) -> Tensor:
        return self.unet(x, t, cond, keep)

    @property
    def image_size(self) -> int:
        """The side of the pictures it draws (the decoder's, for a latent model)."""
        ae = self.config.autoencoder
        return ae["image_size"] if ae else self.config.unet.image_size

    @torch.no_grad()
    def data_from_images(self, images: np.ndarray) -> np.ndarray:
        """What the UNet learns to denoise, in [0, 1]: the images, or their latents (tanh's
        [-1, 1] mapped to [0, 1], so the Denoising objective's x * 2 - 1 recovers them)."""
        if self.autoencoder is None:
            return images
        z = torch.cat([self.autoencoder.encode(torch.from_numpy(images[i:i + 512]))
                       for i in range(0, len(images), 512)])
        return ((z + 1) / 2).numpy()

    # ------------------------------------------------------------------ prompts
    def prompt_error(self, prompt: str) -> str | None:
        """Why this model cannot draw `prompt` (None when it can)."""
        if self.text_encoder is not None:
            return self.text_encoder.unknown(prompt)
        found = self._classes_named(prompt)
        if len(found) != 1:
            named = "no class" if not found else f"{len(found)} classes"
            return (f"the prompt {prompt[:60]!r} names {named}; name one of: "
                    + ", ".join(ws[1] if len(ws) > 1 else ws[0] for ws in self.config.class_words))
        return None

    def _classes_named(self, prompt: str) -> list[int]:
        said = set(words(prompt))
        return [c for c, ws in enumerate(self.config.class_words) if said & set(ws)]

    def encode_prompts(self, prompts: list[str]) -> Tensor:
        """The condition tensor: [B] class labels or [B, D] text vectors."""
        for p in prompts:
            if (why := self.prompt_error(p)) is not None:
                raise ValueError(why)
        if self.text_encoder is not None:
            return self.text_encoder.encode(prompts)
        return torch.tensor([self._classes_named(p)[0] for p in prompts])

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def generate(self, cond: Tensor | None, n: int | None = None, steps: int = 50,
                 sampler: str = "ddim", guidance: float = 2.0, eta: float = 0.0,
                 seed: int = 0) -> Tensor:
        """[B, C, S, S] images in [0, 1]: start from seeded noise, denoise `steps` times
        (then decode, for a latent model).

        Guidance w mixes eps = eps_null + w (eps_cond - eps_null): w = 1 is the plain
        conditional model, larger w trades variety for fidelity to the condition.
        """
        if sampler not in ("ddim", "ddpm"):
            raise ValueError(f"unknown sampler {sampler!r}; use ddim or ddpm")
        b = len(cond) if cond is not None else n
        c = self.config.unet
        g = torch.Generator().manual_seed(seed)
        x = torch.randn(b, c.in_channels, c.image_size, c.image_size, generator=g)
        ts = self.schedule.timesteps(steps, "trailing")  # starts from pure noise
        self.eval()
        for t, prev in zip(ts, self.schedule.prev_timesteps(ts, sampler), strict=True):
            tt = torch.full((b,), t)
            if cond is None:
                eps = self(x, tt)
            else:  # the conditional and the null prediction in one batch of 2B
                keep = torch.cat([torch.ones(b, dtype=torch.bool), torch.zeros(b, dtype=torch.bool)])
                e_c, e_u = self(x.repeat(2, 1, 1, 1), tt.repeat(2), torch.cat([cond, cond]),
                                keep).chunk(2)
                eps = e_u + guidance * (e_c - e_u)
            if sampler == "ddpm":
                noise = torch.randn(x.shape, generator=g) if t > 0 else None
                x = self.schedule.ddpm_step(eps, t, prev, x, noise)
            else:
                noise = torch.randn(x.shape, generator=g) if eta > 0 else None
                x = self.schedule.ddim_step(eps, t, prev, x, eta, noise)
        x = x.clamp(-1, 1).float()
        return self.autoencoder.decode(x) if self.autoencoder is not None else (x + 1) / 2

    # ------------------------------------------------------------------ files
    def save_pretrained(self, folder: str | Path) -> None:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / "config.json", json.dumps(asdict(self.config), indent=2,
                                                             ensure_ascii=False))
        state = {k: v.contiguous() for k, v in self.unet.state_dict().items()}
        atomic_write(folder / "model.safetensors", lambda tmp: save_file(state, tmp))
        if self.autoencoder is not None:
            ae = {k: v.contiguous() for k, v in self.autoencoder.state_dict().items()}
            atomic_write(folder / "autoencoder.safetensors", lambda tmp: save_file(ae, tmp))


def load_diffusion(folder: str | Path) -> DiffusionModel:
    from safetensors.torch import load_file

    folder = Path(folder)
    path = folder / "config.json"
    if not path.is_file() or not (folder / "model.safetensors").is_file():
        raise ValueError(f"{folder} is not a diffusion model folder (config.json + "
                         "model.safetensors); train one with benchmarks/diffusion.py or "
                         "`lmstack demo --stages diffusion`")
    raw = json.loads(path.read_text(encoding="utf-8"))
    if raw.get("autoencoder") and not (folder / "autoencoder.safetensors").is_file():
        raise ValueError(f"{folder} holds a latent diffusion model but no "
                         "autoencoder.safetensors; copy the whole folder that saved it")
    config = DiffusionConfig(**{**raw, "unet": UNetConfig(**raw["unet"])})
    model = DiffusionModel(config)
    model.unet.load_state_dict(load_file(folder / "model.safetensors"))
    if model.autoencoder is not None:
        model.autoencoder.load_state_dict(load_file(folder / "autoencoder.safetensors"))
    return model.eval()


class Denoising:
    """The Trainer's objective: noise an image at a random step, predict the noise (MSE);
    the condition is dropped (null) for a share `p_uncond` of examples, for guidance."""

    name = "denoising"

    def __init__(self, schedule: NoiseSchedule, p_uncond: float = 0.1):
        self.schedule, self.p_uncond = schedule, p_uncond

    def counts(self, batch: dict[str, Tensor]) -> dict[str, int]:
        return {"mse": len(batch["images"])}

    def input_tokens(self, batch: dict[str, Tensor]) -> int:
        return len(batch["images"])  # images: "tokens/s" reads as images/s

    def __call__(self, model: nn.Module, batch: dict[str, Tensor]) -> dict:
        x0 = batch["images"] * 2 - 1                                   # [B, C, S, S] in [-1, 1]
        b = len(x0)
        t = torch.randint(0, self.schedule.train_steps, (b,), device=x0.device)
        noise = torch.randn_like(x0)
        keep = torch.rand(b, device=x0.device) >= self.p_uncond
        eps = model(self.schedule.add_noise(x0, noise, t), t, batch.get("cond"), keep)
        loss = ((eps.float() - noise) ** 2).mean(dim=(1, 2, 3)).sum()
        return {"mse": (loss, torch.tensor(b))}


class DiffusionSet:
    """Images in [0, 1] and their conditions (labels or text vectors), as the Trainer batches."""

    def __init__(self, images: np.ndarray, cond: Tensor | None):
        self.images, self.cond = torch.from_numpy(images), cond

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, indices, keys=None) -> dict[str, Tensor]:
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        out = {"images": self.images[idx]}
        if self.cond is not None:
            out["cond"] = self.cond[idx]
        return out
