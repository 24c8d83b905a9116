"""POST /v1/images/captions over real HTTP on 127.0.0.1: a PNG in, the captioner's words out
(as in-process); bad images and questions out as OpenAI-shaped 4xx; the page offers the tab;
`lmstack serve --caption-model` refuses a folder that is not a captioner."""

from __future__ import annotations

import base64
import io
import time

import httpx
import numpy as np
import pytest
from cli_helpers import run_lmstack, start_lmstack
from PIL import Image

from lmstack.multimodal.shapes import make_shapes
from lmstack.serve import BackgroundServer, create_app
from lmstack.serve.captions import decode_image


def png_b64(image: np.ndarray) -> str:
    """[3, H, W] in [0, 1] -> base64 PNG."""
    buf = io.BytesIO()
    Image.fromarray((image.transpose(1, 2, 0) * 255).round().astype(np.uint8)).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


@pytest.fixture(scope="module")
def server(tiny_captioner):
    with BackgroundServer(create_app({}, captioners={"shapes": tiny_captioner})) as running:
        yield running


def test_caption_and_question_over_http_equal_in_process(server, tiny_captioner):
    images, _ = make_shapes(1, seed=3)
    b64 = png_b64(images[0])
    # The PNG round trip is exact up to 8-bit rounding, so the model sees the same picture.
    assert np.abs(decode_image(b64, (3, 16, 16)) - images[:1]).max() <= 0.5 / 255 + 1e-6
    pixels = decode_image(b64, (3, 16, 16))
    for body, want in [({}, tiny_captioner.describe(pixels, "en")[0]),
                       ({"language": "zh"}, tiny_captioner.describe(pixels, "zh")[0]),
                       ({"question": "what colour is the shape?"},
                        tiny_captioner.answer(pixels, "what colour is the shape?")[0])]:
        r = httpx.post(f"{server.url}/v1/images/captions",
                       json={"image": f"data:image/png;base64,{b64}", **body}, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["text"] == want and r.json()["object"] == "image.caption"


def big_png() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (4097, 4097)).save(buf, "PNG")  # compresses to a few kB
    return base64.b64encode(buf.getvalue()).decode()


@pytest.mark.parametrize("body, status, param", [
    ({"image": "not base64!"}, 400, "image"),
    ({"image": base64.b64encode(b"plain text, not a picture").decode()}, 400, "image"),
    ({"image": ""}, 400, "image"),
    ({}, 400, "image"),
    ({"image": "big"}, 400, "image"),
    ({"image": "ok", "question": "   "}, 400, "question"),
    ({"image": "ok", "question": "what colour is the hexagon?"}, 400, "question"),
    ({"image": "ok", "language": "fr"}, 400, "language"),
    ({"image": "ok", "model": "nope"}, 404, "model"),
])
def test_bad_input_is_an_openai_shaped_4xx(server, body, status, param):
    images, _ = make_shapes(1, seed=4)
    body = {k: {"ok": png_b64(images[0]), "big": big_png()}.get(v, v) for k, v in body.items()}
    r = httpx.post(f"{server.url}/v1/images/captions", json=body, timeout=60)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert error["message"]


def test_models_and_page_offer_the_captioner(server):
    cards = httpx.get(f"{server.url}/v1/models", timeout=10).json()["data"]
    assert [c["id"] for c in cards if "caption" in c["capabilities"]] == ["shapes"]
    page = httpx.get(f"{server.url}/", timeout=10).text
    assert 'id="caption"' in page and "/static/caption.js" in page
    script = httpx.get(f"{server.url}/static/caption.js", timeout=10)
    assert script.status_code == 200 and "/v1/images/captions" in script.text


def test_cli_serves_a_captioner_folder_alone(tiny_captioner, tmp_path, free_port):
    folder = tiny_captioner.save(tmp_path / "shapes-captioner")
    proc = start_lmstack("serve", "--caption-model", str(folder), "--port", str(free_port))
    url = f"http://127.0.0.1:{free_port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # no language model loads: ready in seconds
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        images, _ = make_shapes(1, seed=7)
        b64 = png_b64(images[0])
        r = httpx.post(f"{url}/v1/images/captions", json={"image": b64}, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["model"] == "shapes-captioner"
        pixels = decode_image(b64, (3, 16, 16))
        assert r.json()["text"] == tiny_captioner.describe(pixels, "en")[0]
    finally:
        proc.terminate()
        proc.communicate(timeout=60)


def test_cli_refuses_a_folder_that_is_not_a_captioner(tmp_path, free_port):
    result = run_lmstack("serve", "--caption-model", str(tmp_path), "--port", str(free_port))
    assert result.returncode == 2, result.stdout + result.stderr
    out = result.stdout + result.stderr
    assert "not a captioner folder" in out and "Traceback" not in out
