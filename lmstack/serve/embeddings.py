"""`POST /v1/embeddings`: unit-length sentence vectors from an encoder (mean pooling).

Follows the OpenAI Embeddings API (float or base64 little-endian float32) and
sentence-transformers' mean-pool-then-normalise recipe used by all-MiniLM-L6-v2.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from fastapi import APIRouter, Request

from lmstack.serve.errors import context_length_exceeded, invalid
from lmstack.serve.protocol import EmbeddingRequest
from lmstack.serve.registry import ModelEntry, ServerState
from lmstack.serve.sampling import check_prompt_chars, check_token_ids
from lmstack.serve.schemas import V1, EmbeddingList

router = APIRouter()
BATCH = 32  # texts per forward pass: padding waste stays small, memory stays bounded


def embed_ids(entry: ModelEntry, batch_ids: list[list[int]]) -> list[list[float]]:
    """Vectors for token-id sequences, batched and padded; runs on a worker thread."""
    import torch

    from lmstack.models import mean_pool

    pad = entry.tokenizer.pad_token_id or 0
    vectors: list[list[float]] = []
    with entry.encode_lock, torch.inference_mode():
        # Sorting by length keeps padding small within each batch; order is restored below.
        order = sorted(range(len(batch_ids)), key=lambda i: len(batch_ids[i]))
        by_index: dict[int, list[float]] = {}
        for start in range(0, len(order), BATCH):
            idx = order[start:start + BATCH]
            width = max(len(batch_ids[i]) for i in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                ids[row, :len(batch_ids[i])] = torch.tensor(batch_ids[i])
                mask[row, :len(batch_ids[i])] = 1
            hidden, _ = entry.encoder(ids, mask, torch.zeros_like(ids))
            pooled = mean_pool(hidden.float(), mask, normalize=True)
            for row, i in enumerate(idx):
                by_index[i] = pooled[row].tolist()
        vectors = [by_index[i] for i in range(len(batch_ids))]
    return vectors


def encode_inputs(entry: ModelEntry, req: EmbeddingRequest) -> list[list[int]]:
    """Token ids of every input, each checked against the context (characters first)."""
    inputs = req.inputs()
    for item in inputs:
        if isinstance(item, str):
            check_prompt_chars(entry, item, "input")
    batch_ids = []
    for i, item in enumerate(inputs):
        ids = (entry.tokenizer.encode(item) if isinstance(item, str)
               else check_token_ids(entry, list(item), "input"))
        if len(ids) > entry.max_model_len:
            raise context_length_exceeded(
                f"Input {i} has {len(ids)} tokens; this model reads at most "
                f"{entry.max_model_len}. Split or shorten it.", "input")
        batch_ids.append(ids)
    return batch_ids


def _encode_b64(vector: list[float]) -> str:
    import numpy as np

    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


@router.post("/v1/embeddings", response_model=None,
             responses={200: {"model": EmbeddingList}, **V1})
async def create_embeddings(req: EmbeddingRequest, request: Request) -> dict[str, Any]:
    state: ServerState = request.app.state.lmstack
    entry = state.get(req.model, "embed")
    hidden = entry.encoder.config.hidden_size
    if req.dimensions is not None and req.dimensions != hidden:
        # Cutting a vector short only works for models trained for it (Matryoshka); MiniLM
        # is not, so a shorter vector would quietly be a worse one.
        raise invalid(f"dimensions={req.dimensions} is not supported; this model's vectors "
                      f"have {hidden} dimensions.", "dimensions")
    # Tokenizing and the forward pass are CPU work: off the event loop, so streams keep
    # flowing meanwhile.
    batch_ids = await asyncio.to_thread(encode_inputs, entry, req)
    vectors = await asyncio.to_thread(embed_ids, entry, batch_ids)
    data = [{"object": "embedding", "index": i,
             "embedding": _encode_b64(v) if req.encoding_format == "base64" else v}
            for i, v in enumerate(vectors)]
    used = sum(len(ids) for ids in batch_ids)
    return {"object": "list", "data": data, "model": entry.name,
            "usage": {"prompt_tokens": used, "total_tokens": used}}
