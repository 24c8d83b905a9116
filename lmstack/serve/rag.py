"""`POST /v1/retrieve` (the passages a query finds, with spans) and `POST /v1/rag/answer`
(retrieve, generate with a served model, cite): the retrieval side of the server, present
when the app was given a retriever (a knowledge base).

The answer streams as server-sent events like the chat API's: `{"delta": text}` frames while
the model writes, then one `{"answer": ..., "citations": [...], "sources": [...]}` frame and
`[DONE]`. Neither endpoint is part of OpenAI's API; the shapes are lmstack's own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import Field, StrictBool, StrictInt

from lmstack.rag.pipeline import Answer, RagPipeline
from lmstack.serve.errors import APIError, error_body, invalid, overloaded
from lmstack.serve.generation import sse
from lmstack.serve.protocol import APIRequest
from lmstack.serve.registry import ServerState
from lmstack.serve.schemas import V1

router = APIRouter()
log = logging.getLogger("lmstack.serve")
MAX_QUERY_CHARS = 4000  # a question, not a document: longer is a client bug


class RetrieveRequest(APIRequest):
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    k: StrictInt = Field(5, ge=1, le=50)


class RagAnswerRequest(APIRequest):
    model: str
    question: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    k: StrictInt = Field(4, ge=1, le=20)
    max_tokens: StrictInt = Field(256, ge=1, le=4096)
    stream: StrictBool = False


def _retriever(request: Request) -> Any:
    retriever = getattr(request.app.state, "retriever", None)
    if retriever is None:
        raise APIError(404, "This server has no knowledge base to retrieve from; start it "
                       "with `lmstack apps kb serve`.", "invalid_request_error", None,
                       "no_retriever")
    return retriever


@router.post("/v1/retrieve", response_model=None, responses=V1)
async def retrieve(req: RetrieveRequest, request: Request) -> dict[str, Any]:
    hits = await asyncio.to_thread(_retriever(request).search, req.query, req.k)
    return {"object": "list", "data": [h.to_dict() for h in hits]}


@router.post("/v1/rag/answer", response_model=None, responses=V1)
async def rag_answer(req: RagAnswerRequest, request: Request) -> Any:
    from lmstack.engine import EngineFullError
    from lmstack.engine.chat_model import EngineChatModel

    retriever = _retriever(request)
    state: ServerState = request.app.state.lmstack
    entry = state.get(req.model, "generate")
    pipeline = RagPipeline(retriever, EngineChatModel(entry.async_engine, entry.name),
                           k=req.k, min_score=request.app.state.min_score,
                           max_tokens=req.max_tokens)
    if not req.stream:
        try:
            answer = await asyncio.to_thread(pipeline.answer, req.question)
        except EngineFullError as e:  # busy or too big for the KV cache: as the chat API says
            raise overloaded(str(e)) from None
        except ValueError as e:  # the engine's refusals, e.g. sources plus question too long
            raise invalid(f"{e}; ask with a smaller k or max_tokens.", "k") from None
        return {"object": "rag.answer", "model": entry.name, **answer.to_dict()}
    # Retrieval happens before the first byte, so its errors are still HTTP statuses.
    hits = await asyncio.to_thread(pipeline.retrieve, req.question)
    return StreamingResponse(_events(pipeline, req.question, hits),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _events(pipeline: RagPipeline, question: str, hits: list) -> Iterator[bytes]:
    """SSE frames (a plain generator: Starlette runs it on a worker thread)."""
    try:
        for item in pipeline.stream(question, hits):
            yield sse(item.to_dict() if isinstance(item, Answer) else {"delta": item})
    except Exception as exc:
        log.exception("RAG answer failed mid-stream")
        yield sse(error_body(f"Answering failed: {exc}", "server_error", None,
                             "internal_error"))
    yield sse("[DONE]")

