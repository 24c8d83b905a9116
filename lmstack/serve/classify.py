"""`POST /v1/classify`: labels and class probabilities for a batch of texts.

Mounted only when the app is given classifiers (`lmstack apps sentiment serve`). OpenAI has no
classification endpoint; the body follows /v1/embeddings (`model`, `input`: one text or a
list) and the answer its list shape, one object per input in order. A classifier is any object
with `labels` and `classify(texts) -> [{"label", "probabilities"}]`, so this floor needs no
knowledge of the app that trained it.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, field_validator

from lmstack.serve.errors import pick_served
from lmstack.serve.protocol import APIRequest
from lmstack.serve.schemas import V1

MAX_INPUTS = 256  # texts per request: one request cannot hold the encoder for minutes
MAX_CHARS = 100_000  # per text; long texts are cut to the encoder's window anyway

router = APIRouter()
_lock = threading.Lock()  # one forward pass at a time: the cores are better used by one


class ClassifyRequest(APIRequest):
    model: str | None = None  # may be left out when one classifier is served
    input: str | list[str]

    @field_validator("input")
    @classmethod
    def _input(cls, v: str | list[str]) -> str | list[str]:
        texts = [v] if isinstance(v, str) else v
        if not texts:
            raise ValueError("input must hold at least one text")
        if len(texts) > MAX_INPUTS:
            raise ValueError(f"input holds {len(texts)} texts; send at most {MAX_INPUTS} "
                             "per request")
        for i, text in enumerate(texts):
            if not text.strip():
                raise ValueError(f"input text {i} is empty; send some words to classify")
            if len(text) > MAX_CHARS:
                raise ValueError(f"input text {i} has {len(text)} characters; the limit is "
                                 f"{MAX_CHARS}")
        return v


class Classification(BaseModel):
    object: str = "classification"
    index: int
    label: str
    probabilities: dict[str, float]


class ClassificationList(BaseModel):
    object: str = "list"
    model: str
    data: list[Classification]


def classifier_cards(classifiers: dict[str, Any], created: int) -> list[dict[str, Any]]:
    """/v1/models entries, so clients (and the web page) find the classifiers."""
    return [{"id": name, "object": "model", "created": created, "owned_by": "lmstack",
             "max_model_len": getattr(c, "max_length", None), "capabilities": ["classify"]}
            for name, c in classifiers.items()]


def _run(classifier: Any, texts: list[str]) -> list[dict[str, Any]]:
    with _lock:
        return classifier.classify(texts)


@router.post("/v1/classify", response_model=None,
             responses={200: {"model": ClassificationList}, **V1})
async def classify(req: ClassifyRequest, request: Request) -> dict[str, Any]:
    name, classifier = pick_served(request.app.state.classifiers, req.model, "classifier")
    texts = [req.input] if isinstance(req.input, str) else list(req.input)
    # The forward pass is CPU work: off the event loop, so other requests keep moving.
    results = await asyncio.to_thread(_run, classifier, texts)
    return {"object": "list", "model": name,
            "data": [{"object": "classification", "index": i, **r}
                     for i, r in enumerate(results)]}
