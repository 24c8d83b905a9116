"""The knowledge base behind the server: lmstack's OpenAI-compatible app with the KB as its
retriever (/v1/retrieve, /v1/rag/answer), a page at /kb that streams answers with clickable
sources, and /kb/documents/{source} for the text a source's span points into.

Documents are read back from the KB's store, never from the file system, so a source name
in a URL cannot reach a file outside the ingested root.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from lmstack.apps.kb.knowledge_base import KnowledgeBase
from lmstack.serve import ModelEntry, create_app
from lmstack.serve.errors import APIError

STATIC = Path(__file__).parent / "static"


def kb_app(kb: KnowledgeBase, models: dict[str, ModelEntry], min_score: float | None = None,
           **options) -> FastAPI:
    """`create_app(models, **options)` with `kb` as the retriever, plus the KB's page."""
    app = create_app(models, retriever=kb, min_score=min_score, **options)

    @app.get("/kb", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "kb.html", media_type="text/html")

    @app.get("/kb/documents/{source:path}")
    async def document(source: str) -> dict:
        text = kb.document(source)
        if text is None:
            raise APIError(404, f"No document {source!r} in this knowledge base.",
                           "invalid_request_error", "source", "document_not_found")
        return {"source": source, "text": text}

    app.mount("/kb/static", StaticFiles(directory=STATIC), name="kb-static")
    return app
