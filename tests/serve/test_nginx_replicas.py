"""Real nginx (deploy/nginx/lmstack.conf, rendered by deploy/run_replicas.py) in front of two
real `lmstack serve` replicas of the tiny Llama: both get traffic, and when one is killed the
requests still succeed, nginx's access log showing the dead replica tried, then the live one."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "deploy"))
from run_replicas import BALANCE, Cluster, Nginx, find_nginx

pytestmark = pytest.mark.skipif(find_nginx() is None, reason="nginx is not installed; `make "
                                "nginx` installs Debian's package when run as root")


def upstreams(line: str) -> tuple[list[str], list[str]]:
    """The `ua="a, b"` and `us="502, 200"` fields of one lmstack access-log line."""
    addrs = line.split(' ua="')[1].split('"')[0].split(", ")
    statuses = line.split(' us="')[1].split('"')[0].split(", ")
    return addrs, statuses


def test_nginx_balances_and_fails_over(lm_folder, tmp_path):
    body = {"model": "tiny", "prompt": "The quick", "max_tokens": 4}
    with Cluster(str(lm_folder), replicas=2, name="tiny", workdir=tmp_path) as cluster:
        first, second = (f"127.0.0.1:{r.port}" for r in cluster.replicas)
        with httpx.Client(base_url=cluster.url, timeout=60) as client:
            for _ in range(6):
                assert client.post("/v1/completions", json=body).status_code == 200
            cluster.replicas[0].signal(signal.SIGKILL)
            cluster.replicas[0].wait(timeout=10)
            after = [client.post("/v1/completions", json=body, headers={"x-request-id": f"k{i}"})
                     for i in range(6)]
        log = cluster.nginx.access_log.read_text().splitlines()
    assert [r.status_code for r in after] == [200] * 6, [r.text for r in after]
    assert [r.headers["x-request-id"] for r in after] == [f"k{i}" for i in range(6)]
    served = {upstreams(line)[0][-1] for line in log[:6]}
    assert served == {first, second}, log[:6]  # least_conn used both
    tried = [upstreams(line) for line in log[6:]]
    assert all(addrs[-1] == second and statuses[-1] == "200" for addrs, statuses in tried)
    # The dead replica was tried (connection refused: 502) and the request went on to the live
    # one; max_fails then kept it out of rotation for fail_timeout.
    assert ([first, second], ["502", "200"]) in tried, log[6:]


@pytest.mark.parametrize("balance", ["least_conn", "session"])
def test_rendered_config_passes_nginx_check(balance, tmp_path):
    """`nginx -t` parses the rendered template in both balancing modes (no replicas needed)."""
    nginx = Nginx(tmp_path, port=8080, upstreams=[8001, 8002], balance=balance)
    check = subprocess.run([find_nginx(), "-t", "-p", str(tmp_path), "-c",
                            str(tmp_path / "nginx.conf")], capture_output=True, text=True,
                           check=False)
    assert check.returncode == 0, check.stderr
    rendered = (tmp_path / "lmstack.conf").read_text()
    assert not re.search(r"\{\{\w+\}\}", rendered)  # every placeholder filled
    assert f"access_log {nginx.access_log} lmstack;" in rendered
    active = {name for name, line in BALANCE.items()
              if re.search(rf"^\s*{re.escape(line)}$", rendered, re.MULTILINE)}
    assert active == {balance}
