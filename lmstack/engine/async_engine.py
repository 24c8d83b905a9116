"""AsyncEngine: one background thread steps the Engine; asyncio and plain threads consume it.

Follows vLLM's AsyncLLMEngine: requests and aborts go through an inbox the engine thread
drains between steps, and each request's outputs come back on its own queue.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator

from lmstack.engine.engine import Engine, merge_outputs
from lmstack.engine.params import EngineFullError, RequestOutput, SamplingParams

log = logging.getLogger(__name__)
Sink = Callable[[RequestOutput | BaseException], None]


class AsyncEngine:
    """Thread-safe front of an Engine. Every call may come from any thread or event loop."""

    def __init__(self, engine: Engine, idle_wait_s: float = 0.1):
        self.engine = engine
        self._idle_wait_s = idle_wait_s
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._sinks: dict[str, Sink] = {}
        self._lock = threading.Lock()  # guards _sinks and _pending
        self._pending = 0  # submitted but not yet handed to the engine
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._stats = engine.stats
        self._thread = threading.Thread(target=self._loop, name="lmstack-engine", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ submitting
    def _submit(self, prompt, params: SamplingParams, request_id: str | None,
                sink: Sink) -> str:
        if self._stopped.is_set():
            raise RuntimeError("the engine has been shut down")
        # Tokenizing and validating here, in the caller's thread, makes bad requests fail
        # at once with a ValueError instead of surfacing later from the engine thread.
        seq = self.engine.make_sequence(prompt, params, request_id)
        with self._lock:
            if seq.request_id in self._sinks:
                raise ValueError(f"request id {seq.request_id!r} is already in use")
            limit = self.engine.max_queue
            if limit is not None and self._stats["waiting"] + self._pending >= limit:
                raise EngineFullError(f"{limit} requests are already waiting; retry later")
            self._sinks[seq.request_id] = sink
            self._pending += 1
        self._inbox.put(("add", seq))
        self._wake.set()
        return seq.request_id

    def abort(self, request_id: str) -> None:
        """Cancel a request; its blocks are freed before the engine's next step."""
        self._inbox.put(("abort", request_id))
        self._wake.set()

    def stream(self, prompt: str | list[int], params: SamplingParams | None = None,
               request_id: str | None = None) -> AsyncIterator[RequestOutput]:
        """Outputs of one request as they are produced: `async for out in engine.stream(...)`.

        Must be called inside a running event loop. Bad requests raise ValueError (or
        EngineFullError) right here; closing or cancelling the iterator (a client that went
        away) aborts the request and frees its cache blocks.
        """
        loop = asyncio.get_running_loop()
        q: asyncio.Queue = asyncio.Queue()

        def sink(item: RequestOutput | BaseException) -> None:
            loop.call_soon_threadsafe(q.put_nowait, item)

        rid = self._submit(prompt, params or SamplingParams(), request_id, sink)
        return self._consume_async(rid, q)

    async def _consume_async(self, rid: str, q: asyncio.Queue) -> AsyncIterator[RequestOutput]:
        finished = False
        try:
            while not finished:
                item = await q.get()
                if isinstance(item, BaseException):
                    finished = True
                    raise item
                finished = item.finished
                yield item
        finally:
            if not finished:
                self.abort(rid)

    async def generate(self, prompt: str | list[int], params: SamplingParams | None = None,
                       request_id: str | None = None) -> RequestOutput:
        """The whole completion of one request (non-streaming)."""
        return merge_outputs([out async for out in self.stream(prompt, params, request_id)])

    def iterate(self, prompt: str | list[int], params: SamplingParams | None = None,
                request_id: str | None = None) -> Iterator[RequestOutput]:
        """Blocking counterpart of `stream`, for code without an event loop."""
        q: queue.SimpleQueue = queue.SimpleQueue()
        rid = self._submit(prompt, params or SamplingParams(), request_id, q.put)
        return self._consume_sync(rid, q)

    def _consume_sync(self, rid: str, q: queue.SimpleQueue) -> Iterator[RequestOutput]:
        finished = False
        try:
            while not finished:
                item = q.get()
                if isinstance(item, BaseException):
                    finished = True
                    raise item
                finished = item.finished
                yield item
        finally:
            if not finished:
                self.abort(rid)

    # ------------------------------------------------------------------ the engine thread
    def _drain_inbox(self) -> None:
        while True:
            try:
                kind, payload = self._inbox.get_nowait()
            except queue.Empty:
                return
            if kind == "add":
                with self._lock:
                    self._pending -= 1
                try:
                    self.engine.add_sequence(payload, check_queue=False)
                except ValueError as e:  # e.g. a duplicate id that raced past _submit
                    self._deliver_error(payload.request_id, e)
            else:
                self.engine.abort(payload)

    def _loop(self) -> None:
        while not self._stopped.is_set():
            self._drain_inbox()
            if not self.engine.has_unfinished():
                self._stats = self.engine.stats
                self._wake.wait(self._idle_wait_s)
                self._wake.clear()
                continue
            try:
                outputs = self.engine.step()
            except Exception as e:  # fail the requests in flight, keep serving
                log.exception("engine step failed; aborting the requests in flight")
                with self._lock:
                    rids = list(self._sinks)
                for rid in rids:
                    self.engine.abort(rid)
                    self._deliver_error(rid, RuntimeError(f"generation failed: {e}"))
                try:
                    self.engine.step()  # flushes the abort records; nothing is left to run
                except Exception:
                    log.exception("engine could not recover")
                continue
            # Snapshot before delivering, so a consumer that sees its request finish also
            # sees the blocks it gave back.
            self._stats = self.engine.stats
            for out in outputs:
                if out.error is not None:  # this request alone failed; its stream raises
                    self._deliver_error(out.request_id, ValueError(out.error))
                    continue
                with self._lock:
                    sink = (self._sinks.pop(out.request_id, None) if out.finished
                            else self._sinks.get(out.request_id))
                if sink is not None:
                    self._safe_call(sink, out)

    def _deliver_error(self, rid: str, error: BaseException) -> None:
        with self._lock:
            sink = self._sinks.pop(rid, None)
        if sink is not None:
            self._safe_call(sink, error)

    @staticmethod
    def _safe_call(sink: Sink, item) -> None:
        try:
            sink(item)
        except RuntimeError:  # the consumer's event loop is already closed: nobody listens
            pass

    # ------------------------------------------------------------------ lifecycle
    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the engine thread; requests still in flight end with an error."""
        self._stopped.set()
        self._wake.set()
        self._thread.join(timeout)
        with self._lock:
            rids = list(self._sinks)
        for rid in rids:
            self._deliver_error(rid, RuntimeError("the engine was shut down"))

    @property
    def stats(self) -> dict:
        """The engine's counters as of its last step (a snapshot; safe from any thread)."""
        with self._lock:
            in_flight = len(self._sinks)
        return {**self._stats, "in_flight": in_flight}
