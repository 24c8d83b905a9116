"""A small UNet that predicts the noise in x_t: sinusoidal time embedding, residual blocks that
read it, self-attention at the lowest resolution, and a class or text condition added to the
time embedding (a learned "null" condition stands in when it is dropped, for guidance).

References: Ho et al. 2020 (the DDPM UNet), Ronneberger et al. 2015 (UNet), Ho & Salimans 2022
(classifier-free guidance); the layout is diffusers' UNet2DModel's, pared down.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class UNetConfig:
    image_size: int = 8
    in_channels: int = 1
    channels: list[int] = field(default_factory=lambda: [32, 64])  # per resolution, top first
    groups: int = 8                     # GroupNorm groups (must divide every width)
    heads: int = 4                      # attention heads at the lowest resolution
    num_classes: int = 0                # > 0: class-conditioned (labels 0..num_classes-1)
    cond_dim: int = 0                   # > 0: conditioned on text vectors of this size

    def __post_init__(self):
        if any(c % self.groups for c in self.channels):
            raise ValueError(f"every width in {self.channels} must divide by groups={self.groups}")


def timestep_embedding(t: Tensor, dim: int) -> Tensor:
    """[B] integer steps -> [B, dim]: sines and cosines at geometric frequencies (the
    Transformer's positions), so nearby steps get nearby vectors."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None]                          # [B, half]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


class ResBlock(nn.Module):
    """norm -> SiLU -> conv, plus the step (and condition) as a per-channel shift, twice, with a
    skip path: the block only learns a correction."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, groups: int):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(groups, c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2, self.conv2 = nn.GroupNorm(groups, c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))                         # [B, C_out, H, W]
        h = h + self.emb(F.silu(emb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class SelfAttention(nn.Module):
    """Every position attends to every other: global shape at a resolution small enough (4x4,
    7x7) that the H*W x H*W attention costs little."""

    def __init__(self, channels: int, heads: int, groups: int):
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv, self.out = nn.Linear(channels, 3 * channels), nn.Linear(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.shape
        seq = self.norm(x).flatten(2).transpose(1, 2)                  # [B, HW, C]
        q, k, v = self.qkv(seq).reshape(b, h * w, 3, self.heads, c // self.heads).unbind(2)
        y = F.scaled_dot_product_attention(*(z.transpose(1, 2) for z in (q, k, v)))  # [B,h,HW,d]
        y = self.out(y.transpose(1, 2).reshape(b, h * w, c))
        return x + y.transpose(1, 2).reshape(b, c, h, w)


class UNet(nn.Module):
    """Down: a ResBlock per width, halving the side between widths; middle: ResBlock,
    attention, ResBlock; up: a ResBlock per width on [upsampled, skip] concatenated."""

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = c = config
        ch, g = c.channels, c.groups
        emb = 4 * ch[0]
        self.time_mlp = nn.Sequential(nn.Linear(ch[0], emb), nn.SiLU(), nn.Linear(emb, emb))
        if c.num_classes:
            self.cond_embed: nn.Module | None = nn.Embedding(c.num_classes, emb)
        elif c.cond_dim:
            self.cond_embed = nn.Sequential(nn.Linear(c.cond_dim, emb), nn.SiLU(),
                                            nn.Linear(emb, emb))
        else:
            self.cond_embed = None
        self.null_cond = nn.Parameter(torch.zeros(emb))  # the "no condition" input of guidance
        self.conv_in = nn.Conv2d(c.in_channels, ch[0], 3, padding=1)
        self.down = nn.ModuleList(ResBlock(a, b, emb, g) for a, b in pairwise([ch[0], *ch]))
        self.downsample = nn.ModuleList(nn.Conv2d(w, w, 3, stride=2, padding=1) for w in ch[:-1])
        self.mid1, self.mid2 = ResBlock(ch[-1], ch[-1], emb, g), ResBlock(ch[-1], ch[-1], emb, g)
        self.attn = SelfAttention(ch[-1], c.heads, g)
        ups = list(reversed(ch))
        self.up = nn.ModuleList(ResBlock(a + b, b, emb, g) for a, b in zip([ch[-1], *ups[:-1]], ups, strict=True))
        self.upsample = nn.ModuleList(nn.Conv2d(w, w, 3, padding=1) for w in ups[:-1])
        self.norm_out, self.conv_out = nn.GroupNorm(g, ch[0]), nn.Conv2d(ch[0], c.in_channels, 3,
                                                                         padding=1)

    def condition(self, cond: Tensor | None, keep: Tensor | None, b: int) -> Tensor:
        """[B, emb]: the condition's embedding where `keep`, the null embedding elsewhere."""
        null = self.null_cond.expand(b, -1)
        if cond is None or self.cond_embed is None:
            return null
        e = self.cond_embed(cond)
        return e if keep is None else torch.where(keep[:, None], e, null)

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None,
                keep: Tensor | None = None) -> Tensor:
        """x [B, C, H, W] noisy images, t [B] steps -> [B, C, H, W] predicted noise."""
        emb = self.time_mlp(timestep_embedding(t, self.config.channels[0]))
        emb = emb + self.condition(cond, keep, len(x))                 # [B, emb]
        h, skips = self.conv_in(x), []
        for i, block in enumerate(self.down):
            h = block(h, emb)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)                              # side / 2
        h = self.mid2(self.attn(self.mid1(h, emb)), emb)
        for i, block in enumerate(self.up):
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
            if i < len(self.upsample):
                skip_side = skips[-1].shape[-1]                        # 7 -> 14 -> 28 exactly
                h = self.upsample[i](F.interpolate(h, size=skip_side, mode="nearest"))
        return self.conv_out(F.silu(self.norm_out(h)))
