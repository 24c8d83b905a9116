"""Running the app under uvicorn: in the foreground (`lmstack serve`) or on a background thread.

Follows uvicorn's programmatic `Server` API; the thread variant is what tests and the demo use,
the foreground one drains on SIGTERM (replica.py) as a replica behind a load balancer must.
"""

from __future__ import annotations

import socket
import threading
import time
from types import FrameType
from typing import Any, Self

import uvicorn

from lmstack.serve.replica import Replica


class DrainingServer(uvicorn.Server):
    """uvicorn that drains on SIGTERM/SIGINT instead of closing at once.

    uvicorn's own handler stops listening at the first signal, so a request that reaches the
    port a moment later is refused at the TCP level, and afterwards it re-raises the signal
    (exit status -15, not 0). Here the first signal only starts the replica's drain: the port
    stays open and answers 503, and the process exits 0 once the replica says it is finished.
    A second signal exits at once, as uvicorn's does.
    """

    def __init__(self, config: uvicorn.Config, replica: Replica) -> None:
        super().__init__(config)
        self.replica = replica

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.replica.phase == "draining":
            self.should_exit = self.force_exit = True
        else:
            self.replica.start_drain()

    async def on_tick(self, counter: int) -> bool:
        return await super().on_tick(counter) or self.replica.finished()


def serve(replica: Replica, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Serve `replica` in the foreground until it has drained (SIGTERM or Ctrl-C) or its models
    failed to load (that error is raised here). Logging is set up by the caller (logs.py)."""
    # log_config=None keeps setup_logging's handlers; the drain already waited for requests,
    # so uvicorn's own graceful wait only has idle keep-alive connections left to close.
    config = uvicorn.Config(replica, host=host, port=port, lifespan="on", log_config=None,
                            access_log=False, timeout_graceful_shutdown=2)
    DrainingServer(config, replica).run()
    if replica.error is not None:
        raise replica.error


class BackgroundServer:
    """uvicorn serving `app` on a thread, on a free port unless one is given.

        with BackgroundServer(create_app(models)) as server:
            OpenAI(base_url=server.url + "/v1", api_key="-")
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0,
                 log_level: str = "warning") -> None:
        self.app, self.host, self.port, self.log_level = app, host, port, log_level
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> Self:
        # Binding here (port 0 = the OS picks) and handing uvicorn the socket leaves no window
        # in which another process could take the port between choosing and listening.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level=self.log_level, lifespan="on",
                                timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]},
                                       name=f"uvicorn:{self.port}", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the server thread exited during start-up; see its log")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the server did not start within {timeout:.0f}s")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=15)
        self.server = self.thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
