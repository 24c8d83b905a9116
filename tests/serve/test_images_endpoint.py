"""POST /v1/images/generations over real HTTP on 127.0.0.1, asked by the openai client: PNGs
of the requested size and count, the same picture for the same seed, and bad requests (size,
count, empty / overlong prompts, prompts the model cannot draw) as OpenAI-shaped 4xx."""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
import pytest
import torch

from lmstack.multimodal.diffusion import load_diffusion
from lmstack.multimodal.train_diffusion import digit_model
from lmstack.serve import BackgroundServer, create_app


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("digits-ddpm")
    torch.manual_seed(0)
    digit_model(8, [16, 16]).save_pretrained(folder)  # tiny, untrained: the API is under test
    app = create_app({}, image_models={"digits": load_diffusion(folder)})
    with BackgroundServer(app) as running:
        yield running


def pictures(body: dict) -> list:
    from PIL import Image

    return [Image.open(io.BytesIO(base64.b64decode(d["b64_json"]))) for d in body["data"]]


def test_openai_client_gets_pngs_of_the_size_asked(server):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused")
    result = client.images.generate(model="digits", prompt="a handwritten seven", n=2,
                                    size="64x64", response_format="b64_json")
    images = pictures(result.model_dump())
    assert len(images) == 2 and all(im.size == (64, 64) and im.format == "PNG" for im in images)
    # Nearest-neighbour enlargement: every 8x8 block of the 64x64 picture is one pixel.
    pixels = np.asarray(images[0])
    assert (pixels == pixels[::8, ::8].repeat(8, 0).repeat(8, 1)).all()


def test_same_seed_same_picture_and_chinese_prompts(server):
    body = {"prompt": "手写的数字七", "seed": 3}
    a = httpx.post(f"{server.url}/v1/images/generations", json=body, timeout=60)
    b = httpx.post(f"{server.url}/v1/images/generations", json=body, timeout=60)
    assert a.status_code == 200, a.text
    assert a.json()["data"] == b.json()["data"] and isinstance(a.json()["created"], int)
    assert pictures(a.json())[0].size == (8, 8)  # default: the model's own size


@pytest.mark.parametrize("body, status, param", [
    ({"prompt": "7", "size": "1024x1024"}, 400, "size"),
    ({"prompt": "7", "size": "20x20"}, 400, "size"),
    ({"prompt": "7", "n": 0}, 400, "n"),
    ({"prompt": "7", "n": 11}, 400, "n"),
    ({"prompt": "   "}, 400, "prompt"),
    ({"prompt": "seven " * 200}, 400, "prompt"),
    ({"prompt": "a cat on a sofa"}, 400, "prompt"),
    ({"prompt": "7", "response_format": "url"}, 400, "response_format"),
    ({"prompt": "7", "model": "nope"}, 404, "model"),
    ({}, 400, "prompt"),
])
def test_bad_requests_are_openai_shaped_4xx(server, body, status, param):
    r = httpx.post(f"{server.url}/v1/images/generations", json=body, timeout=60)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert error["message"]


def test_models_and_page_offer_the_image_model(server):
    cards = httpx.get(f"{server.url}/v1/models", timeout=10).json()["data"]
    [card] = [c for c in cards if "images" in c["capabilities"]]
    assert card["id"] == "digits" and card["sizes"][:2] == ["8x8", "16x16"]
    page = httpx.get(f"{server.url}/", timeout=10).text
    assert 'id="images"' in page and "/static/images.js" in page
    script = httpx.get(f"{server.url}/static/images.js", timeout=10)
    assert script.status_code == 200 and "/v1/images/generations" in script.text
