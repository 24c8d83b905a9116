"""One server replica's life: loading -> ready -> draining -> gone, as a load balancer sees it.

Follows Kubernetes' probe contract and vLLM/TGI's serving practice: the port opens at once and
answers liveness (/health: the process is alive) while the model loads; readiness (/ready) is
true only between "loaded" and "asked to stop". On SIGTERM the replica drains: it refuses new
work with an OpenAI-shaped 503 (a balancer retries it elsewhere), lets every request already
admitted finish (streams included) within a grace period, then exits 0.

`Replica` is a pure-ASGI app wrapped around the FastAPI app (which `build` makes, in a thread,
so the event loop stays free to answer probes). It also gives every request an id: the
client's `x-request-id` when it sends a sane one, a fresh one otherwise, echoed in the
response and stamped on every log line written while serving it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from lmstack.serve.errors import SafeJSONResponse, error_body
from lmstack.serve.logs import request_id

log = logging.getLogger("lmstack.serve")
access_log = logging.getLogger("lmstack.access")
PROBES = {"/health", "/ready", "/metrics"}  # never refused for draining; quiet in the log
# An id we are willing to echo into headers and logs: no spaces, quotes or control characters.
SANE_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


def _request_id(scope: dict) -> str:
    for key, value in scope.get("headers") or []:
        if key == b"x-request-id":
            sent = value.decode("latin-1")
            return sent if SANE_ID.fullmatch(sent) else uuid.uuid4().hex
    return uuid.uuid4().hex


class Replica:
    """ASGI app: the lifecycle (phase, in-flight count, drain) around the app `build` makes."""

    def __init__(self, build: Callable[[], Any], grace_s: float = 30.0) -> None:
        self.build, self.grace_s = build, grace_s
        self.app: Any = None
        self.phase = "loading"  # loading | ready | draining | failed
        self.error: BaseException | None = None
        self.in_flight = 0  # admitted requests whose response has not been fully sent
        self.drain_started = 0.0
        self._stop: asyncio.Event | None = None

    # ---- lifecycle

    def start_drain(self) -> None:
        """Stop admitting; `finished` turns true once in-flight work is done or grace is up."""
        if self.phase in ("draining", "failed"):
            return
        self.phase, self.drain_started = "draining", time.monotonic()
        log.info("draining: %d request(s) in flight, grace %.0f s", self.in_flight, self.grace_s)

    def finished(self) -> bool:
        """Whether the process may exit: loading failed, or the drain is complete."""
        if self.phase == "failed":
            return True
        if self.phase != "draining":
            return False
        if self.in_flight == 0:
            log.info("drained in %.1f s", time.monotonic() - self.drain_started)
            return True
        if time.monotonic() - self.drain_started > self.grace_s:
            log.warning("grace period over with %d request(s) still in flight; they are cut",
                        self.in_flight)
            return True
        return False

    async def _load(self) -> Any:
        # A daemon thread rather than asyncio.to_thread: a replica stopped mid-load must not
        # wait at exit for a model it will never serve.
        loop, done = asyncio.get_running_loop(), asyncio.get_running_loop().create_future()

        def settle(app: Any, error: BaseException | None) -> None:
            if done.done():  # the replica was stopped mid-load
                return
            if error is None:
                done.set_result(app)
            else:
                done.set_exception(error)

        def work() -> None:
            try:
                loop.call_soon_threadsafe(settle, self.build(), None)
            except BaseException as e:  # noqa: BLE001 - handed to the loop, raised there
                loop.call_soon_threadsafe(settle, None, e)

        threading.Thread(target=work, name="load-models", daemon=True).start()
        return await done

    async def _run(self) -> None:
        """Load, start the app's engines (its lifespan), serve until told to stop."""
        t0 = time.monotonic()
        try:
            app = await self._load()
            async with app.router.lifespan_context(app):
                self.app = app
                if self.phase == "loading":
                    self.phase = "ready"
                log.info("ready in %.1f s", time.monotonic() - t0)
                await self._stop.wait()
        except Exception as e:  # noqa: BLE001 - a model that will not load: the CLI raises it
            self.error, self.phase = e, "failed"
            log.error("loading failed: %s", e)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        await receive()  # lifespan.startup
        self._stop = asyncio.Event()
        runner = asyncio.create_task(self._run())
        await send({"type": "lifespan.startup.complete"})  # the port opens now, mid-load
        await receive()  # lifespan.shutdown
        self._stop.set()
        if self.app is None:
            runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await send({"type": "lifespan.shutdown.complete"})

    # ---- requests

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        if scope["type"] != "http":
            return await self.app(scope, receive, send) if self.app else None
        rid = _request_id(scope)
        token = request_id.set(rid)
        status, t0 = 500, time.perf_counter()

        async def send_with_id(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-request-id", rid.encode())]}
            await send(message)

        path = scope["path"]
        try:
            if path == "/ready" or (path == "/health" and self.app is None):
                await self._probe(path)(scope, receive, send_with_id)
            elif path in PROBES and self.app is not None:
                await self.app(scope, receive, send_with_id)
            elif self.phase != "ready":
                await self._refusal()(scope, receive, send_with_id)
            else:
                self.in_flight += 1
                try:
                    await self.app(scope, receive, send_with_id)
                finally:
                    self.in_flight -= 1
        finally:
            access_log.log(logging.DEBUG if path in PROBES else logging.INFO,
                           '%s %s %d %.1f ms', scope.get("method"), path, status,
                           1000 * (time.perf_counter() - t0),
                           extra={"status": status, "path": path})
            request_id.reset(token)

    def _probe(self, path: str) -> SafeJSONResponse:
        """/ready: 200 only when serving; /health before the app exists: alive, loading."""
        if path == "/health":
            return SafeJSONResponse({"status": self.phase}, status_code=200)
        ready = self.phase == "ready"
        return SafeJSONResponse({"status": self.phase, "in_flight": self.in_flight},
                                status_code=200 if ready else 503)

    def _refusal(self) -> SafeJSONResponse:
        why = {"loading": "is still loading its models",
               "draining": "is shutting down and takes no new requests",
               "failed": "could not load its models"}[self.phase]
        body = error_body(f"This replica {why}; retry, and a load balancer will send the "
                          "request to another replica.", "unavailable_error", None, self.phase)
        return SafeJSONResponse(body, status_code=503, headers={"retry-after": "1"})
