"""/health reports the engines, /metrics speaks Prometheus' text format with the gauges,
counters and histograms the server promises."""

from __future__ import annotations

import re

import httpx

SAMPLE = re.compile(r'^([a-z_]+)(\{[^}]*\})? (-?[0-9.e+]+|\+Inf|NaN)$')


def parse(text: str) -> tuple[dict[str, str], dict[str, float]]:
    """(family -> type, 'name{labels}' -> value); fails on any malformed line."""
    types, samples = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
        elif line.startswith("# HELP "):
            continue
        else:
            m = SAMPLE.match(line)
            assert m, f"not a Prometheus sample line: {line!r}"
            samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return types, samples


def test_health(live):
    r = httpx.get(live.url + "/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["models"]["tiny"]["kind"] == "generate" and "running" in body["models"]["tiny"]
    assert body["models"]["minilm"] == {"kind": "embed"}


def test_metrics_after_traffic(client, live):
    client.completions.create(model="tiny", prompt="The quick", max_tokens=5, temperature=0)
    long_prompt = "A shared system prompt that many requests repeat word for word. " * 4
    for _ in range(2):  # the second request finds the first one's full blocks cached
        client.completions.create(model="tiny", prompt=long_prompt, max_tokens=2,
                                  temperature=0)
    r = httpx.get(live.url + "/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    types, samples = parse(r.text)
    assert types == {
        "lmstack_queue_length": "gauge", "lmstack_running_requests": "gauge",
        "lmstack_prefix_cache_queries_total": "counter",
        "lmstack_prefix_cache_hits_total": "counter", "lmstack_prefix_cache_hit_rate": "gauge",
        "lmstack_tokens_per_second": "gauge", "lmstack_generated_tokens_total": "counter",
        "lmstack_prompt_tokens_total": "counter", "lmstack_aborted_requests_total": "counter",
        "lmstack_http_requests_total": "counter",
        "lmstack_time_to_first_token_seconds": "histogram",
        "lmstack_request_latency_seconds": "histogram"}
    tiny = '{model="tiny"}'
    assert samples["lmstack_queue_length" + tiny] == 0
    assert samples["lmstack_running_requests" + tiny] == 0
    assert samples["lmstack_tokens_per_second" + tiny] > 0  # tokens within the last 10 s
    assert samples["lmstack_generated_tokens_total" + tiny] >= 5
    hits = samples["lmstack_prefix_cache_hits_total" + tiny]
    assert 0 < hits < samples["lmstack_prefix_cache_queries_total" + tiny]
    assert 0 < samples["lmstack_prefix_cache_hit_rate" + tiny] < 1
    assert samples['lmstack_http_requests_total{endpoint="/v1/completions",status="200"}'] >= 1
    for hist in ("lmstack_time_to_first_token_seconds", "lmstack_request_latency_seconds"):
        buckets = [(k, v) for k, v in samples.items() if k.startswith(hist + "_bucket")]
        counts = [v for _, v in buckets]
        assert counts == sorted(counts), "histogram buckets must be cumulative"
        assert buckets[-1][0].endswith('le="+Inf"}') or 'le="+Inf"' in buckets[-1][0]
        assert samples[f"{hist}_count{tiny}"] == counts[-1] >= 1
        assert samples[f"{hist}_sum{tiny}"] > 0
