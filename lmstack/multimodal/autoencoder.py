"""A small convolutional autoencoder whose latent space a diffusion model learns instead of the
pixels: 28x28 digits -> 4x7x7 latents (196 numbers for 784 pixels), so the UNet runs at 7x7
and trains in minutes on a CPU. This is Stable Diffusion's plan (Rombach et al. 2022, "latent diffusion") at toy scale.

Each image's latent is normalised (mean 0, std 1: its scale fixed, the job Stable Diffusion's
KL term and scaling factor do), then divided by 2.5 and clipped, so it lies in [-1, 1] as the
DDPM's data must (its x_0 is clipped there). A tanh instead saturated within 20 steps and
stopped learning. While training, the decoder reads latents with a little Gaussian noise
added, so the near-misses a DDPM samples still decode to clean strokes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmstack.models.small_folder import save_small_folder

LATENT_SPREAD = 2.5  # latent std units that map to the DDPM's data range [-1, 1]


@dataclass
class AutoEncoderConfig:
    image_size: int = 28
    in_channels: int = 1
    latent_channels: int = 4
    widths: list[int] = field(default_factory=lambda: [32, 64])  # one halving per width
    latent_noise: float = 0.1          # std of the noise the decoder trains on

    @property
    def latent_size(self) -> int:
        side = self.image_size
        for _ in self.widths:
            side = (side + 1) // 2                                     # 28 -> 14 -> 7
        return side


def conv(c_in: int, c_out: int, stride: int = 1) -> nn.Module:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.SiLU())


class AutoEncoder(nn.Module):
    """encode: [B, C, S, S] in [0, 1] -> [B, L, S/4, S/4] in [-1, 1]; decode: back to [0, 1]."""

    def __init__(self, config: AutoEncoderConfig):
        super().__init__()
        self.config = c = config
        w = c.widths
        down = [conv(c.in_channels, w[0])]
        for a, b in zip(w, [*w[1:], w[-1]], strict=True):
            down += [conv(a, b, stride=2), conv(b, b)]                 # side / 2
        self.encoder = nn.Sequential(*down, nn.Conv2d(w[-1], c.latent_channels, 1))
        self.decoder_in = conv(c.latent_channels, w[-1])
        ups = list(reversed(w))
        self.up = nn.ModuleList(nn.Sequential(conv(a, b), conv(b, b))
                                for a, b in zip(ups, [*ups[1:], w[0]], strict=True))
        self.decoder_out = nn.Conv2d(w[0], c.in_channels, 3, padding=1)

    def encode(self, images: Tensor) -> Tensor:
        h = self.encoder(images * 2 - 1)                              # [B, L, S/4, S/4]
        z = F.group_norm(h.float(), 1)                # each image's latent: mean 0, std 1
        return (z / LATENT_SPREAD).clamp(-1, 1)

    def decode_logits(self, z: Tensor) -> Tensor:
        h = self.decoder_in(z)                                         # [B, W, 7, 7]
        sides = self._sides()
        for block, side in zip(self.up, sides, strict=True):
            h = block(F.interpolate(h, size=side, mode="nearest"))     # 7 -> 14 -> 28
        return self.decoder_out(h)                                     # [B, C, S, S]

    def decode(self, z: Tensor) -> Tensor:
        return torch.sigmoid(self.decode_logits(z))

    def _sides(self) -> list[int]:
        sides, side = [], self.config.image_size
        for _ in self.config.widths:
            sides.append(side)
            side = (side + 1) // 2
        return sides[::-1]                                             # [14, 28]

    def save_pretrained(self, folder: str | Path) -> Path:
        """config.json + model.safetensors (the Trainer's checkpoints call this)."""
        return save_small_folder(folder, asdict(self.config), self)


class Reconstruction:
    """The Trainer's objective: binary cross-entropy of the decoded pixels (ink is near 0 or
    1), the decoder reading slightly noisy latents."""

    name = "reconstruction"

    def counts(self, batch: dict[str, Tensor]) -> dict[str, int]:
        return {"bce": len(batch["images"])}

    def input_tokens(self, batch: dict[str, Tensor]) -> int:
        return len(batch["images"])

    def __call__(self, model: AutoEncoder, batch: dict[str, Tensor]) -> dict:
        x = batch["images"]                                            # [B, C, S, S] in [0, 1]
        z = model.encode(x)
        z = z + model.config.latent_noise * torch.randn_like(z)
        logits = model.decode_logits(z).float()
        loss = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        return {"bce": (loss.sum(dim=(1, 2, 3)).sum(), torch.tensor(len(x)))}
