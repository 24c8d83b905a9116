"""Convolutional networks for images: convolution, max pooling and batch norm written out, in a
LeNet-style net and a small ResNet.

References: LeCun et al. 1998 (LeNet-5), Ioffe & Szegedy 2015 (batch norm), He et al. 2016
(residual blocks). Layer maths and parameter names follow torch.nn, and the tests hold each
layer and the whole net to torch.nn with the same weights.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lmstack.models.small_folder import save_small_folder


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None, stride: int = 1,
           padding: int = 0) -> Tensor:
    """Cross-correlation as one matrix product ("im2col").

    `unfold` copies every k x k patch (over all input channels) into a column; each output
    channel's filter is then a row vector, and one matmul computes every filter at every place.
    """
    b, _, h, w = x.shape
    out_ch, _, k, _ = weight.shape
    cols = F.unfold(x, k, padding=padding, stride=stride)         # [B, C*k*k, L]
    out = weight.reshape(out_ch, -1) @ cols                         # [B, out_ch, L]
    if bias is not None:
        out = out + bias[:, None]
    out_h, out_w = ((n + 2 * padding - k) // stride + 1 for n in (h, w))
    return out.reshape(b, out_ch, out_h, out_w)


def max_pool2d(x: Tensor, k: int = 2) -> Tensor:
    """Keep the largest value of each non-overlapping k x k window (a little shift invariance,
    a quarter of the positions to compute in the next layer)."""
    b, c, h, w = x.shape
    windows = F.unfold(x, k, stride=k).reshape(b, c, k * k, -1)
    return windows.max(dim=2).values.reshape(b, c, h // k, w // k)


class Conv2d(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, k: int, stride: int = 1, padding: int = 0,
                 bias: bool = True):
        super().__init__()
        self.stride, self.padding = stride, padding
        self.weight = nn.Parameter(torch.empty(out_ch, in_ch, k, k))
        self.bias = nn.Parameter(torch.empty(out_ch)) if bias else None
        # torch.nn.Conv2d's default init: uniform in +-1/sqrt(fan_in) for both.
        bound = 1 / math.sqrt(in_ch * k * k)
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return conv2d(x, self.weight, self.bias, self.stride, self.padding)


class BatchNorm2d(nn.Module):
    """Normalise each channel over the batch and the image, then scale and shift (learned).

    Training uses this batch's statistics and keeps running averages (momentum 0.1, unbiased
    variance, as torch); evaluation uses the running averages, so one image's output does not
    depend on the others in its batch.
    """

    def __init__(self, channels: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            mean = x.mean(dim=(0, 2, 3))
            var = x.var(dim=(0, 2, 3), unbiased=False)
            n = x.numel() / x.shape[1]
            with torch.no_grad():
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(m * mean)
                self.running_var.mul_(1 - m).add_(m * var * n / max(n - 1, 1))
        else:
            mean, var = self.running_mean, self.running_var
        x = (x - mean[:, None, None]) / torch.sqrt(var[:, None, None] + self.eps)
        return x * self.weight[:, None, None] + self.bias[:, None, None]


@dataclass
class CNNConfig:
    arch: str = "lenet"                  # "lenet" or "resnet"
    image_size: int = 28                 # square images; must divide by 4
    in_channels: int = 1
    num_classes: int = 10
    widths: list[int] = field(default_factory=lambda: [6, 16])  # channels per stage
    hidden: list[int] = field(default_factory=lambda: [120, 84])  # LeNet's FC layers
    kernel: int = 5                      # LeNet's filter size (3 suits 8 x 8 digits)

    def __post_init__(self):
        if self.arch not in ("lenet", "resnet"):
            raise ValueError(f"unknown CNN arch {self.arch!r}; use lenet or resnet")
        if self.image_size % 4:
            raise ValueError(f"image_size {self.image_size} must be a multiple of 4")


class ImageClassifier(nn.Module):
    """What both nets share: a config, and saving as config.json + model.safetensors (the
    Trainer writes its checkpoints through `save_pretrained`)."""

    def __init__(self, config: CNNConfig):
        super().__init__()
        self.config = config

    def save_pretrained(self, folder: str | Path) -> None:
        save_small_folder(folder, asdict(self.config), self)


class LeNet(ImageClassifier):
    """[conv -> ReLU -> 2x2 max pool] per stage, then fully connected layers to the classes.

    Convolutions are "same"-padded, so each stage halves the side: 28 -> 14 -> 7, 8 -> 4 -> 2.
    """

    def __init__(self, config: CNNConfig):
        super().__init__(config)
        chans, k = [config.in_channels, *config.widths], config.kernel
        self.convs = nn.ModuleList(Conv2d(a, b, k, padding=k // 2)
                                   for a, b in pairwise(chans))
        side = config.image_size // 2 ** len(config.widths)
        sizes = [chans[-1] * side * side, *config.hidden, config.num_classes]
        self.fcs = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(sizes))

    def forward(self, x: Tensor) -> Tensor:
        for conv in self.convs:
            x = max_pool2d(F.relu(conv(x)))
        x = x.flatten(1)
        for i, fc in enumerate(self.fcs):
            x = fc(x)
            x = F.relu(x) if i < len(self.fcs) - 1 else x
        return x


class ResidualBlock(nn.Module):
    """out = ReLU(F(x) + shortcut(x)): the block only has to learn a correction to x, and the
    identity path carries gradients straight down, which is what lets deep nets train."""

    def __init__(self, in_ch: int, out_ch: int, stride: int):
        super().__init__()
        self.conv1 = Conv2d(in_ch, out_ch, 3, stride, 1, bias=False)  # BN supplies the shift
        self.bn1 = BatchNorm2d(out_ch)
        self.conv2 = Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)
        self.bn2 = BatchNorm2d(out_ch)
        self.shortcut = None
        if stride != 1 or in_ch != out_ch:  # a 1x1 conv matches the new shape
            self.shortcut = nn.Sequential(Conv2d(in_ch, out_ch, 1, stride, bias=False),
                                          BatchNorm2d(out_ch))

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + (x if self.shortcut is None else self.shortcut(x)))


class ResNet(ImageClassifier):
    """A stem conv (plus a 2x2 pool for large images), one residual block per width (each after the first halves the side),
    global average pooling and one linear layer."""

    def __init__(self, config: CNNConfig):
        super().__init__(config)
        w = config.widths
        self.stem = nn.Sequential(Conv2d(config.in_channels, w[0], 3, 1, 1, bias=False),
                                  BatchNorm2d(w[0]), nn.ReLU())
        # Large images are pooled once in the stem, as ResNet's own stem does: the blocks then
        # run on a quarter of the positions (28 x 28 -> 14 x 14), 4x less compute.
        self.stem_pool = config.image_size >= 16
        self.blocks = nn.Sequential(*(ResidualBlock(a, b, 1 if i == 0 else 2)
                                      for i, (a, b) in enumerate(zip([w[0], *w], w,
                                                                     strict=False))))
        self.fc = nn.Linear(w[-1], config.num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        x = max_pool2d(x) if self.stem_pool else x
        return self.fc(self.blocks(x).mean(dim=(2, 3)))


def build_cnn(config: CNNConfig) -> ImageClassifier:
    return (LeNet if config.arch == "lenet" else ResNet)(config)


def load_cnn(folder: str | Path) -> ImageClassifier:
    from safetensors.torch import load_file

    folder = Path(folder)
    config = CNNConfig(**json.loads((folder / "config.json").read_text(encoding="utf-8")))
    model = build_cnn(config)
    model.load_state_dict(load_file(folder / "model.safetensors"))
    return model
