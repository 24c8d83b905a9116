"""Load and fault test: 3 lmstack replicas behind nginx, a fixed arrival rate of mixed requests,
one replica SIGKILLed and another drained (SIGTERM) and restarted mid-run.

The claim under test: clients only ever lose the requests a SIGKILLed replica was serving
(nginx retries what it can: connection refused, 503 while draining), a drained replica
finishes every stream it accepted, and no client hangs (every request has a timeout).
Each failure is attributed to an upstream through nginx's access log ($upstream_addr,
$upstream_status, keyed by the x-request-id the client sent).

Default model: a small random Llama built here (4 layers, hidden 128: three replicas of
SmolLM2 do not fit 2 busy cores); --model smollm2 serves the real one.
Run: `.venv/bin/python benchmarks/load.py` (about 3-4 minutes; --seconds sets the run).
Follows the open-loop (fixed arrival rate) load generators of vLLM's serving benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parents[1] / "deploy"))
from run_replicas import Cluster

from lmstack.fileio import atomic_write_text

RESULTS = Path(__file__).parent / "results" / "load.json"
KINDS = ("chat", "chat_stream", "completion", "completion_stream")
PROMPTS = ["Explain what a load balancer does.", "Write a haiku about queues.",
           "List three prime numbers.", "What is a replica?", "Summarise SSE in one line."]


def build_small_llama(folder: Path) -> str:
    """A random Llama with a byte-level BPE trained on this repo's README: cheap to serve 3x."""
    import torch

    from lmstack.models import LlamaConfig, LlamaForCausalLM, save_model
    from lmstack.tokenizer import train_bpe_from_iterator

    readme = (Path(__file__).parents[1] / "README.md").read_text().splitlines()
    tok = train_bpe_from_iterator(readme, vocab_size=1024, show_progress=False)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=128, intermediate_size=352,
                      num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=1024, tie_word_embeddings=True)
    save_model(LlamaForCausalLM(cfg), folder)
    tok.save(folder)
    return str(folder)


async def one_request(client: httpx.AsyncClient, i: int, kind: str, rng: random.Random,
                      t0: float) -> dict:
    """Send one request; record status, TTFT, latency, tokens and how it ended."""
    rid = f"load-{i}"
    stream = kind.endswith("_stream")
    body = {"model": "model", "max_tokens": rng.randint(16, 64), "temperature": 0.8,
            "stream": stream}
    if kind.startswith("chat"):
        path = "/v1/chat/completions"
        body["messages"] = [{"role": "user", "content": rng.choice(PROMPTS)}]
    else:
        path, body["prompt"] = "/v1/completions", rng.choice(PROMPTS)
    if stream:
        body["stream_options"] = {"include_usage": True}
    rec = {"id": rid, "kind": kind, "sent_s": round(time.monotonic() - t0, 3), "status": None,
           "ok": False, "accepted": False, "cut": False, "error": None, "ttft_s": None,
           "latency_s": None, "tokens": 0}
    start = time.perf_counter()
    try:
        if not stream:
            r = await client.post(path, json=body, headers={"x-request-id": rid})
            rec["status"] = r.status_code
            if r.status_code == 200:
                rec["ok"], rec["tokens"] = True, r.json()["usage"]["completion_tokens"]
            else:
                rec["error"] = r.text[:200]
        else:
            async with client.stream("POST", path, json=body,
                                     headers={"x-request-id": rid}) as r:
                rec["status"] = r.status_code
                if r.status_code != 200:
                    rec["error"] = (await r.aread()).decode()[:200]
                else:
                    rec["accepted"], done = True, False
                    async for line in r.aiter_lines():
                        if not line.startswith("data: "):
                            continue
                        if line == "data: [DONE]":
                            done = True
                            break
                        chunk = json.loads(line[6:])
                        if chunk.get("usage"):
                            rec["tokens"] = chunk["usage"]["completion_tokens"]
                        elif rec["ttft_s"] is None and chunk["choices"]:
                            rec["ttft_s"] = time.perf_counter() - start
                    rec["ok"], rec["cut"] = done, not done
    except httpx.HTTPError as e:  # a cut stream, a refused connection, a client timeout
        rec["error"] = f"{type(e).__name__}: {e}"[:200]
        rec["cut"] = rec["accepted"]
    rec["latency_s"] = time.perf_counter() - start
    return rec


async def drive(cluster: Cluster, seconds: float, rate: float, seed: int,
                events: list[dict]) -> list[dict]:
    """Poisson arrivals at `rate`/s for `seconds`; meanwhile the fault script below runs."""
    rng = random.Random(seed)
    t0 = time.monotonic()
    killed, drained = cluster.replicas[0], cluster.replicas[1]

    def note(what: str, **extra: object) -> None:
        events.append({"t_s": round(time.monotonic() - t0, 2), "event": what, **extra})
        print(f"[{events[-1]['t_s']:6.1f}s] {what} {extra or ''}", flush=True)

    async def faults() -> None:
        await asyncio.sleep(seconds * 0.25)
        killed.signal(signal.SIGKILL)
        note("SIGKILL", port=killed.port)
        await asyncio.sleep(seconds * 0.10)
        killed.start()  # as Kubernetes restarts a crashed container
        note("restart (after SIGKILL)", port=killed.port)
        await asyncio.sleep(seconds * 0.15)
        drained.signal(signal.SIGTERM)
        note("SIGTERM", port=drained.port)
        code = await asyncio.to_thread(drained.wait, 120)
        note("drained replica exited", port=drained.port, exit_code=code)
        drained.start()
        note("restart (after drain)", port=drained.port)
        for replica in (killed, drained):
            await asyncio.to_thread(cluster.wait_ready, [replica], 300)
            note("ready again", port=replica.port)

    timeout = httpx.Timeout(60.0, connect=5.0)
    limits = httpx.Limits(max_connections=200)
    async with httpx.AsyncClient(base_url=cluster.url, timeout=timeout, limits=limits) as client:
        fault_task = asyncio.create_task(faults())
        tasks, i = [], 0
        while time.monotonic() - t0 < seconds:
            tasks.append(asyncio.create_task(one_request(client, i, rng.choice(KINDS), rng, t0)))
            i += 1
            await asyncio.sleep(rng.expovariate(rate))
        records = await asyncio.gather(*tasks)
        await fault_task
    return list(records)


def nginx_lines(path: Path) -> dict[str, dict]:
    """request id -> the upstreams nginx tried and their statuses, from the lmstack log_format."""
    out = {}
    for line in path.read_text().splitlines():
        rid = line.rsplit(" rid=", 1)[-1]
        addrs = line.split(' ua="')[1].split('"')[0].split(", ")
        statuses = line.split(' us="')[1].split('"')[0].split(", ")
        out[rid] = {"upstreams": addrs, "statuses": statuses, "status": int(line.split('" ')[1]
                                                                            .split()[0])}
    return out


def access_entries(log_text: str) -> list[tuple[str, int]]:
    """(request id, status) of every request a replica's JSON log says it answered."""
    entries = [json.loads(line) for line in log_text.splitlines() if line.startswith("{")]
    return [(e["request_id"], e["status"]) for e in entries
            if e.get("logger") == "lmstack.access" and e["request_id"].startswith("load-")]


def percentile(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(q * len(xs)))], 4)


def cpu_description() -> dict:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((ln.split(":", 1)[1].strip() for ln in info.splitlines()
                  if ln.startswith("model name")), "unknown")
    flags = next((ln.split(":", 1)[1].split() for ln in info.splitlines()
                  if ln.startswith("flags")), [])
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    return {"model": model, "cpus": os.cpu_count(), "flags": [f for f in wanted if f in flags]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model to serve (default: a small random "
                        "Llama built here; smollm2 for the real one)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the load phase")
    parser.add_argument("--rate", type=float, default=3.0, help="requests per second (Poisson)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="lmstack-load-") as tmp:
        model = args.model or build_small_llama(Path(tmp) / "small-llama")
        events: list[dict] = []
        cluster = Cluster(model, replicas=3, name="model", workdir=Path(tmp) / "cluster",
                          serve_args=("--max-num-seqs", "16", "--grace-seconds", "30"))
        t_start = time.monotonic()
        with cluster:
            print(f"3 replicas ready in {time.monotonic() - t_start:.0f} s behind {cluster.url}",
                  flush=True)
            records = asyncio.run(drive(cluster, args.seconds, args.rate, args.seed, events))
            killed, drained = cluster.replicas[0], cluster.replicas[1]
            ports = {"sigkilled": f"127.0.0.1:{killed.port}",
                     "drained": f"127.0.0.1:{drained.port}",
                     "untouched": f"127.0.0.1:{cluster.replicas[2].port}"}
            time.sleep(1)  # nginx writes a request's log line when it ends
            routes = nginx_lines(cluster.nginx.access_log)
            drained_log = (cluster.workdir / f"replica-{drained.port}-1.log").read_text()
    load_after = os.getloadavg()
    report(records, routes, drained_log, ports, events, args, load_before, load_after)


def report(records: list[dict], routes: dict, drained_log: str, ports: dict,
           events: list[dict], args: argparse.Namespace, load_before: tuple,
           load_after: tuple) -> None:
    failures = []
    for r in records:
        if r["ok"]:
            continue
        route = routes.get(r["id"], {})
        last = route.get("upstreams", ["none"])[-1]
        who = next((k for k, v in ports.items() if v == last), "nginx itself" if route else
                   "no nginx log line")
        failures.append({"id": r["id"], "kind": r["kind"], "status": r["status"],
                         "cut_stream": r["cut"], "error": r["error"], "upstream": last,
                         "replica": who, "tried": route.get("upstreams")})
    retried = [rid for rid, route in routes.items() if rid.startswith("load-")
               and len(route["upstreams"]) > 1]
    answered = access_entries(drained_log)  # by the drained replica, before it exited
    ok = [r for r in records if r["ok"]]
    duration = max(r["sent_s"] + r["latency_s"] for r in records)
    result = {
        "benchmark": "load and fault test: 3 replicas behind nginx",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "model": args.model or "small random Llama (4 layers, hidden 128, BPE 1024), built "
                 "by the script",
        "load_seconds": args.seconds, "arrival_rate_per_s": args.rate,
        "machine": {**cpu_description(), "load_average_before": round(load_before[0], 2),
                    "load_average_after": round(load_after[0], 2)},
        "events": events,
        "requests": {"sent": len(records), "succeeded": len(ok),
                     "failed": len(records) - len(ok),
                     "retried_by_nginx": len(retried),
                     "by_kind": {k: sum(r["kind"] == k for r in records) for k in KINDS}},
        "ttft_s": {"p50": percentile([r["ttft_s"] for r in ok if r["ttft_s"]], 0.5),
                   "p99": percentile([r["ttft_s"] for r in ok if r["ttft_s"]], 0.99)},
        "latency_s": {"p50": percentile([r["latency_s"] for r in ok], 0.5),
                      "p99": percentile([r["latency_s"] for r in ok], 0.99)},
        "tokens_per_s": round(sum(r["tokens"] for r in ok) / duration, 1),
        "accepted_streams_cut": sum(r["cut"] for r in records),
        "drained_replica": {
            "answered_200": sum(st == 200 for _, st in answered),
            "refused_503_while_draining": sum(st == 503 for _, st in answered),
            "other_statuses": sum(st not in (200, 503) for _, st in answered),
            "failed_requests": sum(f["replica"] == "drained" for f in failures),
            "drain_log": [e["message"] for e in map(json.loads, (
                line for line in drained_log.splitlines() if line.startswith("{")))
                if e["message"].startswith(("draining:", "drained in", "grace period"))]},
        "failures_by_replica": {who: sum(f["replica"] == who for f in failures)
                                for who in {f["replica"] for f in failures}},
        "failures": failures,
        "retried_examples": [{"id": rid, **routes[rid]} for rid in retried[:5]],
        "all_failures_on_sigkilled_replica": all(f["replica"] == "sigkilled"
                                                 for f in failures),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS, json.dumps(result, indent=2) + "\n")
    summary = {k: result[k] for k in ("requests", "ttft_s", "latency_s", "tokens_per_s",
                                      "accepted_streams_cut", "drained_replica",
                                      "failures_by_replica", "all_failures_on_sigkilled_replica")}
    print(json.dumps(summary, indent=2))
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
