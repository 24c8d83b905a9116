"""Latent diffusion: the autoencoder maps 28x28 digits to [-1, 1] latents of the shape its
config names and back, training lowers its reconstruction loss on real digits, and a latent
DDPM samples the same decoded pictures for the same seed, before and after a save/load."""

from __future__ import annotations

import json

import pytest
import torch

from lmstack.data.digits import mnist_5k
from lmstack.multimodal.autoencoder import AutoEncoder, AutoEncoderConfig, Reconstruction
from lmstack.multimodal.diffusion import load_diffusion
from lmstack.multimodal.train_diffusion import digit_model, train_autoencoder, train_diffusion

TINY_AE = AutoEncoderConfig(widths=[8, 16])


@pytest.fixture(scope="module")
def digits():
    X, y = mnist_5k()
    return X[:192], y[:192]


def test_round_trip_shapes_and_latent_range():
    torch.manual_seed(0)
    ae = AutoEncoder(TINY_AE)
    x = torch.rand(3, 1, 28, 28)
    z = ae.encode(x)
    assert z.shape == (3, 4, 7, 7) == (3, TINY_AE.latent_channels, TINY_AE.latent_size,
                                       TINY_AE.latent_size)
    assert z.abs().max() <= 1  # the DDPM's data range
    out = ae.decode(z)
    assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1
    assert AutoEncoderConfig(image_size=16, widths=[8, 8, 8]).latent_size == 2


def test_training_lowers_the_reconstruction_loss(digits, tmp_path):
    X, _ = digits
    batch = {"images": torch.from_numpy(X[:64])}

    def loss(ae) -> float:
        torch.manual_seed(1)  # the same latent noise before and after
        with torch.no_grad():
            total, n = Reconstruction()(ae, batch)["bce"]
        return (total / n).item()

    torch.manual_seed(0)
    before = loss(AutoEncoder(TINY_AE))
    ae, summary = train_autoencoder(X, 60, tmp_path, config=TINY_AE, lr=3e-3)
    assert summary["step"] == 60 and loss(ae) < 0.75 * before
    assert not any(p.requires_grad for p in ae.parameters())  # frozen for the DDPM


def test_latent_model_samples_reproducibly_and_survives_save(digits, tmp_path):
    X, y = digits
    torch.manual_seed(0)
    ae = AutoEncoder(TINY_AE)
    m = digit_model(28, [16, 16], autoencoder=ae)
    assert m.config.unet.image_size == 7 and m.image_size == 28
    data = m.data_from_images(X)
    assert data.shape == (192, 4, 7, 7) and 0 <= data.min() and data.max() <= 1
    train_diffusion(m, X, torch.from_numpy(y), steps=3, out=tmp_path / "run", batch=16)
    labels = torch.tensor([3, 7])
    a = m.generate(labels, steps=4, seed=5)
    assert a.shape == (2, 1, 28, 28)
    assert torch.equal(a, m.generate(labels, steps=4, seed=5))
    assert not torch.equal(a, m.generate(labels, steps=4, seed=6))
    m.save_pretrained(tmp_path / "model")
    assert json.loads((tmp_path / "model" / "config.json").read_text())["autoencoder"]
    assert torch.equal(a, load_diffusion(tmp_path / "model").generate(labels, steps=4, seed=5))
    (tmp_path / "model" / "autoencoder.safetensors").unlink()
    with pytest.raises(ValueError, match="autoencoder.safetensors"):
        load_diffusion(tmp_path / "model")


def test_a_clock_sized_run_reaches_the_end_of_its_schedule(digits, tmp_path):
    """Sized by minutes, the warmup + cosine fits the steps the budget holds (a schedule sized
    for the step cap would stay in its warmup: the 28x28 runs before this fix did)."""
    X, y = digits
    torch.manual_seed(0)
    m = digit_model(8, [16, 16])
    X8 = X[:, :, ::4, ::4][:, :, :8, :8].copy()
    summary = train_diffusion(m, X8, torch.from_numpy(y), 10**6, tmp_path, batch=16,
                              lr=1e-3, minutes=0.04)
    assert 4 < summary["step"] < 10**6
    last = json.loads((tmp_path / "metrics.jsonl").read_text().splitlines()[-1])
    # Near the cosine's floor (0.1 x lr); sized for the cap it would still be warming up (~1e-6).
    assert 0.09e-3 <= last["lr"] <= 0.4e-3
