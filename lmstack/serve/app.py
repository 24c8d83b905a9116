"""The FastAPI app: OpenAI routes, health and metrics, bearer-key auth, the web chat page.

Follows the OpenAI HTTP API and vLLM's server layout (/v1/*, /health, /metrics).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles

from lmstack.serve import captions, chat, classify, completions, embeddings, images, rag
from lmstack.serve.errors import (
    SafeJSONResponse,
    install_error_handlers,
    model_not_found,
    unauthorized,
)
from lmstack.serve.guards import DEFAULT_MAX_BODY_BYTES, RequestGuards
from lmstack.serve.metrics import Metrics
from lmstack.serve.registry import ModelEntry, ServerState
from lmstack.serve.schemas import DOOR, V1, Health, ModelCard, ModelList, tidy_openapi

STATIC = Path(__file__).parent / "static"
# Paths counted under their own name in lmstack_http_requests_total; anything else is
# "other", so scanners probing random URLs cannot blow up the number of series.
COUNTED = {"/v1/completions", "/v1/chat/completions", "/v1/embeddings", "/v1/classify",
           "/v1/images/generations", "/v1/images/captions", "/v1/models", "/v1/retrieve",
           "/v1/rag/answer", "/health", "/metrics", "/"}


class CountRequests:
    """Pure-ASGI middleware counting responses by endpoint and status. (Starlette's
    BaseHTTPMiddleware would buffer the stream and hide client disconnects from it.)"""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        status = 500

        async def send_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            path = scope["path"]
            self.metrics.count_request(path if path in COUNTED else "other", status)


def _start_engines(models: dict[str, ModelEntry]) -> None:
    from lmstack.engine import AsyncEngine

    for entry in models.values():
        if entry.engine is None or entry.async_engine is not None:
            continue
        if isinstance(entry.engine, AsyncEngine):
            entry.async_engine, entry.owns_async_engine = entry.engine, False
        else:
            # Built inside the server's event loop, in case the engine binds to the loop.
            entry.async_engine, entry.owns_async_engine = AsyncEngine(entry.engine), True


def _stop_engines(models: dict[str, ModelEntry]) -> None:
    for entry in models.values():
        if entry.async_engine is not None and entry.owns_async_engine:
            entry.async_engine.shutdown()
        entry.async_engine = None


def create_app(models: dict[str, ModelEntry], api_key: str | None = None, *,
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
               allowed_hosts: list[str] | None = None,
               classifiers: dict[str, Any] | None = None, retriever: Any = None,
               min_score: float | None = None,
               image_models: dict[str, Any] | None = None,
               captioners: dict[str, Any] | None = None) -> FastAPI:
    """An app serving `models` by name; with `api_key`, /v1/* needs `Bearer <api_key>`.

    The page, /health and /metrics stay open (load balancers and Prometheus scrape them
    without credentials); the page asks for the key and sends it with its API calls.
    Bodies over `max_body_bytes` get 413; with `allowed_hosts`, a request whose Host header
    names another host gets 400 (a browser page on a rebinding DNS name cannot reach a
    keyless server on localhost). With `classifiers` (name -> an object with `labels` and
    `classify(texts)`, e.g. the sentiment app's TextClassifier), POST /v1/classify serves them.
    With a `retriever` (anything with `search(query, k)`,
    e.g. a knowledge base), /v1/retrieve and /v1/rag/answer serve it; `min_score` is the
    answer's "not in the documents" threshold. With `image_models` (name -> a diffusion
    model, lmstack.multimodal.diffusion), POST /v1/images/generations draws with them; with
    `captioners` (name -> an image captioner, see lmstack/serve/captions.py), POST
    /v1/images/captions serves them.
    """
    if not models and not classifiers and not image_models and not captioners:
        raise ValueError("create_app needs at least one model or classifier (or image model, "
                         "or captioner) to serve")
    state = ServerState(dict(models), api_key or None, Metrics())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _start_engines(state.models)
        try:
            yield
        finally:
            _stop_engines(state.models)

    app = FastAPI(title="lmstack", summary="An OpenAI-compatible server for lmstack models.",
                  lifespan=lifespan, default_response_class=SafeJSONResponse)
    app.state.lmstack = state
    app.state.classifiers = dict(classifiers or {})
    app.state.image_models = dict(image_models or {})
    app.state.captioners = dict(captioners or {})
    started = int(time.time())
    app.state.retriever, app.state.min_score = retriever, min_score
    install_error_handlers(app)
    # Added last is outermost: refusals at the door are counted too.
    app.add_middleware(RequestGuards, max_body_bytes=max_body_bytes,
                       allowed_hosts=allowed_hosts)
    app.add_middleware(CountRequests, metrics=state.metrics)

    async def check_key(request: Request) -> None:
        if state.api_key is None:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        # compare_digest: the time to reject must not reveal how much of the key matched.
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(),
                                                                 state.api_key.encode()):
            raise unauthorized()

    v1 = APIRouter(dependencies=[Depends(check_key)])

    @v1.get("/v1/models", response_model=None, responses={200: {"model": ModelList}, **V1})
    async def list_models() -> dict[str, Any]:
        return {"object": "list", "data": list(state.cards().values())
                + classify.classifier_cards(app.state.classifiers, started)
                + images.image_model_cards(app.state.image_models, started)
                + captions.captioner_cards(app.state.captioners, started)}

    @v1.get("/v1/models/{name:path}", response_model=None,
            responses={200: {"model": ModelCard}, **V1})
    async def get_model(name: str) -> dict[str, Any]:
        cards = state.cards()
        if name not in cards:
            raise model_not_found(name, sorted(cards))
        return cards[name]

    for module in (completions, chat, embeddings, rag):
        v1.include_router(module.router)
    if classifiers:
        v1.include_router(classify.router)
    if image_models:
        v1.include_router(images.router)
    if captioners:
        v1.include_router(captions.router)
    app.include_router(v1)

    @app.get("/health", response_model=None, responses={
        200: {"model": Health}, 503: {"model": Health, "description": "Still starting"},
        **DOOR})
    async def health() -> JSONResponse:
        ready = all(e.async_engine is not None for e in state.models.values()
                    if e.kind == "generate")
        body = {"status": "ok" if ready else "starting",
                "models": {name: {"kind": e.kind, **_gauges(e)}
                           for name, e in state.models.items()}}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", response_class=PlainTextResponse, responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}},
              "description": "Prometheus text exposition format"}, **DOOR})
    async def metrics() -> PlainTextResponse:
        stats = {name: e.stats() for name, e in state.models.items() if e.kind == "generate"}
        return PlainTextResponse(state.metrics.render(stats),
                                 media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = tidy_openapi(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def _gauges(entry: ModelEntry) -> dict[str, int]:
    stats = entry.stats()
    return {k: int(stats[k]) for k in ("waiting", "running") if k in stats}
