"""`POST /v1/images/generations`: pictures from a prompt by a diffusion model, as OpenAI's
Images API answers them ({created, data: [{b64_json}]}, PNG inside).

Mounted only when the app is given image models (`lmstack serve --image-model FOLDER`). The
models draw small pictures (8x8 to 28x28); `size` may ask for a whole-number enlargement up to
512 pixels a side (nearest-neighbour, so the pixels stay crisp). Only `b64_json` is returned:
a "url" would need somewhere to keep files.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import threading
import time
from typing import Any, Literal

import torch
from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, field_validator

from lmstack.multimodal.pictures import png_bytes, to_uint8
from lmstack.serve.errors import invalid, pick_served
from lmstack.serve.protocol import APIRequest
from lmstack.serve.schemas import V1

MAX_IMAGES = 10          # OpenAI's own limit on n
MAX_PROMPT_CHARS = 1000  # the bag-of-words and class prompts are a few words; this is generous
MAX_SIDE = 512
SAMPLING_STEPS = 50      # DDIM steps per picture
GUIDANCE = 2.0           # classifier-free guidance scale

router = APIRouter()
_lock = threading.Lock()  # one sampling loop at a time: the cores are better used by one


class ImageRequest(APIRequest):
    prompt: str
    model: str | None = None  # may be left out when one image model is served
    n: int = 1
    size: str | None = None   # "WxH"; default: the model's own size
    response_format: Literal["b64_json", "url"] = "b64_json"
    seed: int | None = Field(None, ge=0, le=2**63 - 1)  # lmstack's extension: same seed, same picture

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("prompt is empty; describe the picture, e.g. 'a handwritten seven'")
        if len(v) > MAX_PROMPT_CHARS:
            raise ValueError(f"prompt has {len(v)} characters; the limit is {MAX_PROMPT_CHARS}")
        return v

    @field_validator("n")
    @classmethod
    def _n(cls, v: int) -> int:
        if not 1 <= v <= MAX_IMAGES:
            raise ValueError(f"n must be between 1 and {MAX_IMAGES}, got {v}")
        return v


class Image(BaseModel):
    b64_json: str


class ImagesResponse(BaseModel):
    created: int
    data: list[Image]


def image_model_cards(models: dict[str, Any], created: int) -> list[dict[str, Any]]:
    """/v1/models entries, so clients (and the web page) find the image models."""
    return [{"id": name, "object": "model", "created": created, "owned_by": "lmstack",
             "max_model_len": None, "capabilities": ["images"], "sizes": allowed_sizes(m)}
            for name, m in models.items()]


def allowed_sizes(model: Any) -> list[str]:
    side = model.image_size
    return [f"{side * k}x{side * k}" for k in (1, 2, 4, 8, 16, 32, 64) if side * k <= MAX_SIDE]


def _draw(model: Any, prompt: str, n: int, scale: int, seed: int) -> list[str]:
    with _lock, torch.inference_mode():
        cond = model.encode_prompts([prompt] * n)
        images = model.generate(cond, steps=SAMPLING_STEPS, guidance=GUIDANCE, seed=seed)
    return [base64.b64encode(png_bytes(p)).decode("ascii") for p in to_uint8(images, scale)]


@router.post("/v1/images/generations", response_model=None,
             responses={200: {"model": ImagesResponse}, **V1})
async def generations(req: ImageRequest, request: Request) -> dict[str, Any]:
    name, model = pick_served(request.app.state.image_models, req.model, "image model")
    if req.response_format != "b64_json":
        raise invalid("response_format 'url' is not supported: this server returns the "
                      "pictures inline; use 'b64_json'.", "response_format")
    sizes = allowed_sizes(model)
    size = req.size or sizes[0]
    if size not in sizes:
        raise invalid(f"size {size!r} is not available for {name}; use one of "
                      f"{', '.join(sizes)}.", "size")
    if (why := model.prompt_error(req.prompt)) is not None:
        raise invalid(why[0].upper() + why[1:] + ".", "prompt")
    scale = int(size.split("x")[0]) // model.image_size
    seed = req.seed if req.seed is not None else secrets.randbelow(2**31)
    # The sampling loop is CPU work: off the event loop, so other requests keep moving.
    pictures = await asyncio.to_thread(_draw, model, req.prompt, req.n, scale, seed)
    return {"created": int(time.time()), "data": [{"b64_json": p} for p in pictures]}
