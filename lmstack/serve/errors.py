"""Errors shaped as the OpenAI API shapes them: `{"error": {message, type, param, code}}`.

Follows the OpenAI API reference's error object and the status codes of vLLM and llama.cpp.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("lmstack.serve")


class SafeJSONResponse(JSONResponse):
    """JSON that always encodes: a lone surrogate echoed from a request (a model name in a
    404, say) becomes "?" instead of a UnicodeEncodeError and a 500."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None,
                          separators=(",", ":")).encode("utf-8", "replace")


class APIError(Exception):
    """An error the client caused (or a busy server); becomes one OpenAI-shaped JSON response."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = (
            status, message, type, param, code)

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)


def error_body(message: str, type: str, param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def invalid(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, "invalid_request_error", param, code)


def model_not_found(name: str, known: list[str]) -> APIError:
    return APIError(404, f"The model `{name}` does not exist. Models served here: "
                    f"{', '.join(known) or 'none'} (see GET /v1/models).",
                    "invalid_request_error", "model", "model_not_found")


def pick_served(served: dict[str, Any], name: str | None, kind: str) -> tuple[str, Any]:
    """The (name, object) a request's `model` names; it may be left out when one is served."""
    if name is None:
        if len(served) != 1:
            raise invalid(f"Several {kind}s are served ({', '.join(sorted(served))}); "
                          "name one in `model`.", "model")
        name = next(iter(served))
    if name not in served:
        raise model_not_found(name, sorted(served))
    return name, served[name]


def context_length_exceeded(message: str, param: str = "messages") -> APIError:
    return APIError(400, message, "invalid_request_error", param, "context_length_exceeded")


def unauthorized() -> APIError:
    return APIError(401, "Missing or incorrect API key. Send it as the header "
                    "`Authorization: Bearer <key>` (the openai client's api_key).",
                    "authentication_error", None, "invalid_api_key")


def overloaded(detail: str) -> APIError:
    # 503 tells well-behaved clients (the openai client included) to back off and retry.
    detail = detail.strip().rstrip(".")
    if "retry" not in detail.lower():
        detail += "; retry later"
    return APIError(503, f"The server is at capacity: {detail}.", "unavailable_error", None,
                    "engine_full")


def _param_of(loc: tuple | list) -> str | None:
    """Pydantic's error location ('body', 'messages', 0, 'role') as OpenAI's dotted param."""
    parts = [p for p in loc if p != "body"]
    # Union members show up as loc entries like 'str' or 'list[int]'; they only add noise.
    parts = [p for p in parts if not (isinstance(p, str) and ("[" in p or p in (
        "str", "int", "float", "bool", "function-after", "literal")))]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or None


def _validation_message(errors: list[dict]) -> tuple[str, str | None]:
    first = errors[0]
    if first.get("type") == "json_invalid":
        reason = first.get("ctx", {}).get("error", "parse error")
        return f"The request body is not valid JSON ({reason}).", None
    loc = tuple(first.get("loc", ()))
    if loc == ("body",):
        if first.get("type") == "missing":
            return "The request body is empty; send a JSON object.", None
        if first.get("type") == "value_error":  # a check on the whole body (see protocol.py)
            return first.get("msg", "").removeprefix("Value error, "), None
        return f"The request body must be a JSON object ({first.get('msg')}).", None
    param = _param_of(loc)
    msg = first.get("msg", "invalid value").removeprefix("Value error, ")
    text = f"{param}: {msg}" if param else msg
    if len(errors) > 1:
        text += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return text, param


def install_error_handlers(app: FastAPI) -> None:
    """Every failure leaves the server as an OpenAI-shaped body; bad input is never a 500."""

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        return SafeJSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI answers 422 by default; OpenAI clients expect 400 invalid_request_error.
        message, param = _validation_message(list(exc.errors()))
        return SafeJSONResponse(error_body(message, "invalid_request_error", param),
                                status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {401: "authentication_error", 404: "not_found_error",
                405: "invalid_request_error"}.get(exc.status_code, "invalid_request_error")
        message = str(exc.detail)
        if exc.status_code == 404:
            message = f"No route {request.method} {request.url.path}; see /docs for the API."
        return SafeJSONResponse(error_body(message, kind), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Reaching here is an lmstack bug, not a bad request: log it, answer in the same shape.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return SafeJSONResponse(error_body(f"Internal server error: {type(exc).__name__}.",
                                       "server_error", None, "internal_error"), status_code=500)
