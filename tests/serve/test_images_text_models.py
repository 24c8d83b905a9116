"""/v1/images/generations with the other kinds of diffusion model: one conditioned on free text
through a CLIP text tower (English and Chinese prompts; words the CLIP never learned are a 400),
and a latent one whose pictures come out of its decoder at the decoder's size."""

from __future__ import annotations

import base64
import io

import httpx
import pytest
import torch

from lmstack.models.clip import CLIPModel
from lmstack.multimodal.autoencoder import AutoEncoder, AutoEncoderConfig
from lmstack.multimodal.caption_vocab import build_caption_tokenizer
from lmstack.multimodal.clip_train import small_clip_config
from lmstack.multimodal.diffusion import load_diffusion
from lmstack.multimodal.image_text import ImageTextModel
from lmstack.multimodal.text_condition import ClipText
from lmstack.multimodal.train_diffusion import caption_model, digit_model
from lmstack.serve import BackgroundServer, create_app


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("text-models")
    tok = build_caption_tokenizer(root / "tokenizer")
    torch.manual_seed(0)  # tiny and untrained: the serving path is under test
    clip = ImageTextModel(CLIPModel(small_clip_config(tok.vocab_size, 8, 1, 2, width=16,
                                                      layers=1)), tok).save(root / "clip")
    caption_model([], size=8, channels=1, widths=[16, 16],
                  encoder=ClipText(clip)).save_pretrained(root / "text")
    digit_model(28, [16, 16], autoencoder=AutoEncoder(AutoEncoderConfig(widths=[8, 16]))
                ).save_pretrained(root / "latent")
    app = create_app({}, image_models={"text": load_diffusion(root / "text"),
                                       "latent": load_diffusion(root / "latent")})
    with BackgroundServer(app) as running:
        yield running


def draw(server, **body) -> httpx.Response:
    return httpx.post(f"{server.url}/v1/images/generations", json=body, timeout=60)


def sizes(body: dict) -> list[tuple[int, int]]:
    from PIL import Image

    return [Image.open(io.BytesIO(base64.b64decode(d["b64_json"]))).size for d in body["data"]]


@pytest.mark.parametrize("prompt", ["a handwritten seven", "手写的数字七"])
def test_free_text_through_clip(server, prompt):
    r = draw(server, model="text", prompt=prompt, n=2, size="16x16", seed=1)
    assert r.status_code == 200, r.text
    assert sizes(r.json()) == [(16, 16), (16, 16)]
    again = draw(server, model="text", prompt=prompt, n=2, size="16x16", seed=1)
    assert again.json()["data"] == r.json()["data"]


def test_words_the_clip_never_learned_are_a_400(server):
    r = draw(server, model="text", prompt="a purple hexagon")
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == "prompt" and "never learned" in error["message"]


def test_latent_model_draws_at_its_decoders_size(server):
    r = draw(server, model="latent", prompt="7", size="56x56", seed=0)
    assert r.status_code == 200, r.text
    assert sizes(r.json()) == [(56, 56)]
    cards = httpx.get(f"{server.url}/v1/models", timeout=10).json()["data"]
    [card] = [c for c in cards if c["id"] == "latent"]
    assert card["sizes"][:2] == ["28x28", "56x56"]
