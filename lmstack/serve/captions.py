"""`POST /v1/images/captions`: describe an image, or answer a question about it.

OpenAI has no captioning route; its chat API takes images as base64 data URLs, so this body
does the same: `image` is a base64 PNG (or JPEG), plain or as a `data:image/png;base64,...`
URL, with an optional `question` and `language` ("en" or "zh") for the caption. Mounted only
when the app is given captioners (`lmstack serve --caption-model FOLDER`). A captioner is any
object with `image_shape` (C, H, W), `describe(images, lang)`, `answer(images, question)` and
`unknown_words(text)`; the picture is converted and resized to what it reads.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import threading
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Request
from pydantic import BaseModel, field_validator

from lmstack.serve.errors import invalid, pick_served
from lmstack.serve.protocol import APIRequest
from lmstack.serve.schemas import V1

MAX_IMAGE_BYTES = 4 * 1024 * 1024    # decoded file size
MAX_PIXELS = 4096 * 4096             # decompression bombs stop here, before decoding
MAX_QUESTION_CHARS = 200

router = APIRouter()
_lock = threading.Lock()  # one forward pass at a time


class CaptionRequest(APIRequest):
    model: str | None = None         # may be left out when one captioner is served
    image: str
    question: str | None = None
    language: Literal["en", "zh"] = "en"

    @field_validator("image")
    @classmethod
    def _image(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("image is empty; send a base64-encoded PNG")
        if len(v) > MAX_IMAGE_BYTES * 4 // 3 + 1024:
            raise ValueError(f"image is larger than {MAX_IMAGE_BYTES // 2**20} MiB; "
                             "send a smaller picture")
        return v

    @field_validator("question")
    @classmethod
    def _question(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("question is empty; leave it out to get a caption")
        if v is not None and len(v) > MAX_QUESTION_CHARS:
            raise ValueError(f"question has {len(v)} characters; the limit is "
                             f"{MAX_QUESTION_CHARS}")
        return v


class Caption(BaseModel):
    object: str = "image.caption"
    model: str
    question: str | None
    text: str


def captioner_cards(captioners: dict[str, Any], created: int) -> list[dict[str, Any]]:
    """/v1/models entries, so clients (and the web page's Image tab) find the captioners."""
    return [{"id": name, "object": "model", "created": created, "owned_by": "lmstack",
             "max_model_len": None, "capabilities": ["caption"]} for name in captioners]


def decode_image(data: str, shape: tuple[int, int, int]) -> np.ndarray:
    """base64 (or a data URL) -> [1, C, H, W] float32 in [0, 1], resized to `shape`."""
    from PIL import Image, UnidentifiedImageError

    if data.startswith("data:"):
        data = data.partition(",")[2]
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("image is not valid base64; send the PNG file's bytes base64-encoded",
                      "image") from None
    try:
        picture = Image.open(io.BytesIO(raw))
        w, h = picture.size
        if w * h > MAX_PIXELS:
            raise invalid(f"image is {w}x{h} pixels; send at most {MAX_PIXELS} pixels", "image")
        picture.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise invalid("image could not be read as a picture; send a PNG or JPEG", "image") from None
    channels, height, width = shape
    picture = picture.convert("RGB" if channels == 3 else "L").resize((width, height),
                                                                       Image.Resampling.BOX)
    array = np.asarray(picture, dtype=np.float32) / 255.0
    array = array.transpose(2, 0, 1) if channels == 3 else array[None]
    return array[None]


def _run(captioner: Any, image: np.ndarray, req: CaptionRequest) -> str:
    with _lock:
        if req.question is None:
            return captioner.describe(image, req.language)[0]
        return captioner.answer(image, req.question)[0]


@router.post("/v1/images/captions", response_model=None,
             responses={200: {"model": Caption}, **V1})
async def caption(req: CaptionRequest, request: Request) -> dict[str, Any]:
    name, captioner = pick_served(request.app.state.captioners, req.model, "captioner")
    if req.question is not None and (unknown := captioner.unknown_words(req.question)):
        raise invalid(f"question has words this small model never learned "
                      f"({', '.join(unknown)}); ask e.g. \"what colour is the shape?\"",
                      "question")
    image = decode_image(req.image, captioner.image_shape)
    text = await asyncio.to_thread(_run, captioner, image, req)
    return {"object": "image.caption", "model": name, "question": req.question, "text": text}
