"""`lmstack serve` on a port another server holds: one line and exit 2 at once, before any
model is loaded (the folder given here is not even a model)."""

from __future__ import annotations

import socket
import time

from cli_helpers import run_lmstack


def test_busy_port_is_refused_before_loading(tmp_path):
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        t0 = time.perf_counter()
        result = run_lmstack("serve", str(tmp_path), "--port", str(port), timeout=120)
        seconds = time.perf_counter() - t0
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"port {port} on 127.0.0.1 is already in use" in lines[0], lines
    assert "Traceback" not in result.stderr and "not a model folder" not in result.stderr
    assert seconds < 60
