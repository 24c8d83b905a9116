"""The diffusion model: seeded samples reproduce (and survive a save/load), guidance mixes the
two predictions as the formula says, a few Trainer steps on real digits lower the denoising
loss, and prompts map to classes or words, with a clear refusal for what it cannot draw."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmstack.data.digits import sklearn_digits
from lmstack.multimodal.diffusion import Denoising, load_diffusion
from lmstack.multimodal.shapes import digit_caption, make_shapes
from lmstack.multimodal.text_condition import BagOfWords
from lmstack.multimodal.train_diffusion import caption_model, digit_model, train_diffusion

TINY = [16, 16]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = digit_model(8, TINY)
    # Random weights predict almost no noise; scale the output so samples depend on them.
    with torch.no_grad():
        m.unet.conv_out.weight.mul_(20)
    return m


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_a_seeded_sample_is_reproducible(model, sampler):
    labels = torch.tensor([3, 7])
    kw = {"steps": 6, "sampler": sampler, "eta": 0.5}
    a = model.generate(labels, seed=11, **kw)
    b = model.generate(labels, seed=11, **kw)
    c = model.generate(labels, seed=12, **kw)
    assert a.shape == (2, 1, 8, 8) and 0 <= a.min() and a.max() <= 1
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-3  # another seed, another picture


def test_saved_model_samples_the_same(model, tmp_path):
    model.save_pretrained(tmp_path)
    again = load_diffusion(tmp_path)
    labels = torch.tensor([1, 9])
    assert torch.equal(model.generate(labels, steps=4, seed=5), again.generate(labels, steps=4,
                                                                               seed=5))
    with pytest.raises(ValueError, match="not a diffusion model folder"):
        load_diffusion(tmp_path / "missing")


def test_guidance_zero_is_the_unconditional_model(model):
    labels = torch.tensor([0, 4])
    # (atol: the guided pass runs a batch of 4, the plain one of 2: other float rounding)
    assert torch.allclose(model.generate(labels, steps=5, guidance=0.0, seed=1),
                          model.generate(None, n=2, steps=5, seed=1), atol=1e-4)
    assert not torch.allclose(model.generate(labels, steps=5, guidance=3.0, seed=1),
                              model.generate(None, n=2, steps=5, seed=1), atol=1e-3)


def test_a_few_trainer_steps_lower_the_denoising_loss(tmp_path):
    X, y = sklearn_digits()
    X, y = X[:256], torch.from_numpy(y[:256])
    torch.manual_seed(0)
    m = digit_model(8, TINY)
    objective = Denoising(m.schedule, p_uncond=0.0)
    batch = {"images": torch.from_numpy(X[:128]), "cond": y[:128]}

    def fixed_loss() -> float:  # same steps and noise before and after
        torch.manual_seed(1)
        with torch.no_grad():
            loss, n = objective(m, batch)["mse"]
        return (loss / n).item()

    before = fixed_loss()
    train_diffusion(m, X, y, steps=40, out=tmp_path, batch=32, lr=3e-3)
    assert fixed_loss() < 0.8 * before


@pytest.mark.parametrize("prompt,label", [("a handwritten seven", 7), ("手写的数字七", 7),
                                          ("7", 7), (digit_caption(0), 0), ("数字三", 3)])
def test_prompts_name_a_digit(model, prompt, label):
    assert model.prompt_error(prompt) is None
    assert model.encode_prompts([prompt]).tolist() == [label]


@pytest.mark.parametrize("prompt", ["a cat", "seven and eight", ""])
def test_prompts_it_cannot_draw_say_why(model, prompt):
    assert "name one of" in model.prompt_error(prompt)
    with pytest.raises(ValueError, match="name one of"):
        model.encode_prompts([prompt])


def test_caption_conditioning_reads_words_in_both_languages():
    _, shapes = make_shapes(64)
    captions = [s.caption(lang) for s in shapes for lang in ("en", "zh")]
    m = caption_model(captions, widths=TINY)
    encoder = m.text_encoder
    assert isinstance(encoder, BagOfWords) and "red" in encoder.vocab and "红" in encoder.vocab
    # A held-out combination is new as a whole but every word is known.
    assert m.prompt_error("a red square at the top left") is None
    assert "none of the words" in m.prompt_error("a purple hexagon")
    vectors = m.encode_prompts(["a red circle at the top left", "左上角的红色圆形"])
    assert vectors.shape == (2, encoder.dim)
    assert torch.allclose(vectors.norm(dim=1), torch.ones(2))
    images = m.generate(vectors, steps=3)
    assert images.shape == (2, 3, 16, 16) and np.isfinite(images.numpy()).all()


def test_a_trained_clip_text_tower_conditions_the_model(tiny_captioner, tmp_path):
    """Text -> image through CLIP's frozen text encoder, as Stable Diffusion reads prompts; the
    saved model names the CLIP folder and comes back with the same encoder."""
    from lmstack.multimodal.text_condition import ClipText

    clip_dir = tiny_captioner.clip.save(tmp_path / "clip")
    encoder = ClipText(clip_dir)
    torch.manual_seed(0)
    m = caption_model([], widths=TINY, encoder=encoder)
    prompts = ["a red circle at the top left", "左上角的红色圆形"]
    vectors = m.encode_prompts(prompts)
    assert torch.allclose(vectors, tiny_captioner.clip.encode_text(prompts))
    assert m.prompt_error("a purple hexagon") is not None  # words CLIP never saw
    m.save_pretrained(tmp_path / "diffusion")
    again = load_diffusion(tmp_path / "diffusion")
    assert isinstance(again.text_encoder, ClipText)
    a = m.generate(vectors, steps=3, seed=1)
    assert torch.equal(a, again.generate(again.encode_prompts(prompts), steps=3, seed=1))
