"""Checks at the door, before routing: a cap on the request body and an optional Host allowlist.

Follows uvicorn/nginx's `client_max_body_size` (413) and Starlette's TrustedHostMiddleware (the
defence against DNS rebinding), answering in the OpenAI error shape like every other route.
"""

from __future__ import annotations

from typing import Any

from lmstack.serve.errors import SafeJSONResponse, error_body

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024  # far above any prompt a context can hold


async def _send_error(send: Any, status: int, message: str, code: str) -> None:
    response = SafeJSONResponse(error_body(message, "invalid_request_error", None, code),
                                status_code=status)
    await send({"type": "http.response.start", "status": status,
                "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


class RequestGuards:
    """Pure-ASGI middleware. The body is read (up to the cap) before the app sees it, so a
    15 MB upload costs at most the cap in memory and is refused without being parsed."""

    def __init__(self, app: Any, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
                 allowed_hosts: list[str] | None = None) -> None:
        self.app, self.max_body_bytes = app, max_body_bytes
        self.allowed_hosts = {h.lower() for h in allowed_hosts or []}

    def _host_allowed(self, headers: dict[bytes, bytes]) -> bool:
        if not self.allowed_hosts or "*" in self.allowed_hosts:
            return True
        host = headers.get(b"host", b"").decode("latin-1").lower()
        # Without the port; an IPv6 literal keeps its brackets ("[::1]:8000" -> "[::1]").
        name = host[:host.find("]") + 1] if host.startswith("[") else host.partition(":")[0]
        return name in self.allowed_hosts

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        if not self._host_allowed(headers):
            return await _send_error(send, 400, "This Host header is not allowed here (the "
                                     "server runs with --allowed-hosts).", "host_not_allowed")
        declared = headers.get(b"content-length", b"").decode("latin-1")
        too_big = (f"The request body is larger than this server accepts "
                   f"({self.max_body_bytes} bytes); send a shorter prompt.")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            return await _send_error(send, 413, too_big, "request_too_large")
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        # A body without a (truthful) length arrives in pieces: count them as they come.
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client left before it finished
                return None
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body_bytes:
                return await _send_error(send, 413, too_big, "request_too_large")
            more = message.get("more_body", False)
        body, replayed = b"".join(chunks), False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # later calls watch for the client going away

        return await self.app(scope, replay, send)
