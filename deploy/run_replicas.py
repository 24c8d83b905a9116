"""N `lmstack serve` replicas on loopback ports with nginx in front: a load-balanced cluster on
one machine, for trying failover by hand and for benchmarks/load.py and the nginx test.

    python deploy/run_replicas.py smollm2 --replicas 3 --port 8080

nginx runs unprivileged from a temporary prefix (its config, pid file, logs and temp files
all live there); deploy/nginx/lmstack.conf is the template it renders. Ctrl-C stops it all.
Follows nginx's `-p/-c` private-prefix mode and the Kubernetes picture of replicas: each one
is a separate process that loads, becomes ready, drains on SIGTERM, or dies on SIGKILL.
"""

from __future__ import annotations

import argparse
import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Self

import httpx

TEMPLATE = Path(__file__).parent / "nginx" / "lmstack.conf"
BALANCE = {"least_conn": "least_conn;", "session": "hash $http_x_session_id consistent;"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_nginx() -> str | None:
    """The nginx binary; Debian puts it in /usr/sbin, which a non-root PATH may lack."""
    return shutil.which("nginx", path=os.environ.get("PATH", "") + ":/usr/sbin:/usr/local/sbin")


class ReplicaProcess:
    """One `lmstack serve` on 127.0.0.1:port, logging JSON lines to its own file."""

    def __init__(self, model: str, port: int, logs: Path, name: str = "model",
                 extra: tuple[str, ...] = ()) -> None:
        self.model, self.port, self.logs, self.name, self.extra = model, port, logs, name, extra
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.logs / f"replica-{self.port}-{self.starts}.log"

    def start(self) -> None:
        self.starts += 1
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
               "OMP_WAIT_POLICY": "PASSIVE"}
        with self.log_path.open("w") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "lmstack", "serve", self.model, "--port", str(self.port),
                 "--name", self.name, "--log-format", "json", *self.extra],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def ready(self) -> bool:
        try:
            return httpx.get(self.url + "/ready", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)


class Nginx:
    """nginx in the foreground from a private prefix: no root, nothing outside `prefix`."""

    def __init__(self, prefix: Path, port: int, upstreams: list[int], balance: str) -> None:
        self.prefix, self.port = prefix, port
        self.access_log = prefix / "access.log"
        servers = "\n".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;"
                            for p in upstreams)
        snippet = (TEMPLATE.read_text().replace("{{balance}}", BALANCE[balance])
                   .replace("{{servers}}", servers).replace("{{listen}}", f"127.0.0.1:{port}")
                   .replace("{{access_log}}", str(self.access_log)))
        (prefix / "lmstack.conf").write_text(snippet)
        temp = "\n".join(f"    {kind}_temp_path {prefix / kind};"
                         for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        # As root, nginx's workers would drop to "nobody"; keep them as the invoking user.
        user = f"user {getpass.getuser()};\n" if os.geteuid() == 0 else ""
        (prefix / "nginx.conf").write_text(
            f"{user}daemon off;\nworker_processes 1;\npid {prefix / 'nginx.pid'};\n"
            f"error_log {prefix / 'error.log'} warn;\nevents {{ worker_connections 1024; }}\n"
            f"http {{\n{temp}\n    include {prefix / 'lmstack.conf'};\n}}\n")
        self.proc: subprocess.Popen | None = None

    def start(self, binary: str) -> None:
        self.proc = subprocess.Popen([binary, "-p", str(self.prefix), "-c",
                                      str(self.prefix / "nginx.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.proc.stderr.read().strip()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError("nginx did not listen within 10 s") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: finish open requests
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Cluster:
    """`replicas` lmstack processes plus nginx; a context manager that tears all of it down.

        with Cluster("smollm2", replicas=3) as cluster:
            httpx.post(cluster.url + "/v1/completions", json=...)
    """

    def __init__(self, model: str, replicas: int = 2, port: int = 0, name: str = "model",
                 balance: str = "least_conn", workdir: Path | None = None,
                 serve_args: tuple[str, ...] = ()) -> None:
        binary = find_nginx()
        if binary is None:
            raise FileNotFoundError("nginx is not installed; `make nginx` (Debian, as root) or "
                                    "`apt-get install nginx` installs it")
        if balance not in BALANCE:
            raise ValueError(f"--balance must be one of {', '.join(BALANCE)}")
        self.binary = binary
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="lmstack-cluster-")
        self.workdir = Path(workdir or self._tmp.name)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.replicas = [ReplicaProcess(model, free_port(), self.workdir, name, serve_args)
                         for _ in range(replicas)]
        self.nginx = Nginx(self.workdir, port or free_port(), [r.port for r in self.replicas],
                           balance)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.nginx.port}"

    def start(self, timeout: float = 300) -> Self:
        for replica in self.replicas:
            replica.start()
        self.wait_ready(self.replicas, timeout)
        self.nginx.start(self.binary)
        return self

    def wait_ready(self, replicas: list[ReplicaProcess], timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        for replica in replicas:
            while not replica.ready():
                if replica.proc.poll() is not None:
                    raise RuntimeError(f"replica on port {replica.port} exited; see "
                                       f"{replica.log_path}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"replica on port {replica.port} not ready in time")
                time.sleep(0.1)

    def stop(self) -> None:
        self.nginx.stop()
        for replica in self.replicas:
            replica.signal(signal.SIGTERM)
        for replica in self.replicas:
            try:
                replica.wait(timeout=30)
            except subprocess.TimeoutExpired:
                replica.signal(signal.SIGKILL)
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="a model folder, GGUF file or short name (smollm2)")
    parser.add_argument("--replicas", type=int, default=2, help="lmstack processes to start")
    parser.add_argument("--port", type=int, default=8080, help="nginx's port on 127.0.0.1")
    parser.add_argument("--balance", choices=sorted(BALANCE), default="least_conn",
                        help="least_conn, or session: the same x-session-id, the same replica")
    args = parser.parse_args()
    if args.replicas < 1:
        sys.exit("error: --replicas must be at least 1")
    try:
        cluster = Cluster(args.model, args.replicas, args.port, balance=args.balance,
                          workdir=Path(tempfile.mkdtemp(prefix="lmstack-cluster-")))
        with cluster:
            print(f"{args.replicas} replicas ready behind {cluster.url}/v1 (logs in "
                  f"{cluster.workdir}); Ctrl-C stops them", flush=True)
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                print("stopping: replicas drain, then exit")
    except (OSError, ValueError, RuntimeError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops it as Ctrl-C does
    main()
