"""The web chat: POST /support/chat and a one-page chat UI at /support, in a FastAPI app."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from lmstack.apps.support.desk import Desk

PAGE = Path(__file__).with_name("chat.html")
_SESSION = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class ChatIn(BaseModel):
    session_id: str = Field(min_length=1, max_length=64)
    message: str = Field(min_length=1, max_length=4000)


def create_support_app(desk: Desk) -> FastAPI:
    app = FastAPI(title="lmstack support desk")

    @app.get("/support", response_class=HTMLResponse)
    def page() -> str:
        return PAGE.read_text(encoding="utf-8")

    @app.post("/support/chat")
    async def chat(body: ChatIn) -> dict:
        if not _SESSION.match(body.session_id):
            raise HTTPException(400, "session_id may hold letters, digits, _ and - only")
        # The team's model calls block: run them off the event loop.
        answer, trace = await asyncio.to_thread(desk.ask, body.session_id, body.message)
        steps = [{k: e[k] for k in ("agent", "kind") if k in e} | (
            {"tool": e["name"]} if e["kind"] == "tool" else {}) for e in trace.events]
        return {"reply": answer, "steps": steps}

    return app
