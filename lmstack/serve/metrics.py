"""Server metrics in the Prometheus text exposition format, written by hand (no dependency).

Follows the Prometheus exposition format 0.0.4 (counters, gauges, cumulative histograms).
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import deque
from collections.abc import Callable

# Seconds. TTFT on a small CPU model spans milliseconds (idle) to seconds (queued behind 64).
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
RATE_WINDOW_S = 10.0  # tokens/s is averaged over this trailing window


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    esc = {k: str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
           for k, v in labels.items()}
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(esc.items())) + "}"


def _num(x: float) -> str:
    return repr(float(x)) if x != int(x) or abs(x) > 2**53 else str(int(x))


class Histogram:
    """Cumulative buckets + sum + count per label set, as Prometheus histograms are."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.series: dict[tuple, list] = {}

    def observe(self, value: float, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        counts, total = self.series.setdefault(key, [[0] * (len(self.buckets) + 1), 0.0])[:2]
        counts[bisect.bisect_left(self.buckets, value)] += 1
        self.series[key][1] = total + value

    def lines(self, name: str) -> list[str]:
        out = []
        for key, (counts, total) in sorted(self.series.items()):
            labels, running = dict(key), 0
            for bound, c in zip((*self.buckets, float("inf")), counts, strict=True):
                running += c
                le = "+Inf" if bound == float("inf") else repr(bound)
                out.append(f"{name}_bucket{_labels({**labels, 'le': le})} {running}")
            out.append(f"{name}_sum{_labels(labels)} {_num(total)}")
            out.append(f"{name}_count{_labels(labels)} {running}")
        return out


class Metrics:
    """What the server counts. Engine gauges (queue, running) are read live at scrape time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: dict[tuple, int] = {}
        self.prompt_tokens: dict[str, int] = {}
        self.generated_tokens: dict[str, int] = {}
        self.aborted: dict[str, int] = {}
        self.ttft = Histogram(TTFT_BUCKETS)
        self.latency = Histogram(LATENCY_BUCKETS)
        self.recent: dict[str, deque[tuple[float, int]]] = {}

    def count_request(self, endpoint: str, status: int) -> None:
        with self.lock:
            key = (endpoint, str(status))
            self.requests[key] = self.requests.get(key, 0) + 1

    def first_token(self, model: str, seconds: float) -> None:
        with self.lock:
            self.ttft.observe(seconds, model=model)

    def tokens(self, model: str, n: int) -> None:
        """n newly generated tokens; feeds the counter and the trailing tokens/s window."""
        if n <= 0:
            return
        now = time.monotonic()
        with self.lock:
            self.generated_tokens[model] = self.generated_tokens.get(model, 0) + n
            window = self.recent.setdefault(model, deque())
            window.append((now, n))
            while window and window[0][0] < now - RATE_WINDOW_S:
                window.popleft()

    def finished(self, model: str, prompt_tokens: int, seconds: float, outcome: str) -> None:
        """outcome: "done" (feeds latency), "aborted" (the client left) or "failed" (an
        error response, already counted by status in the HTTP counter)."""
        with self.lock:
            if outcome == "done":
                self.prompt_tokens[model] = self.prompt_tokens.get(model, 0) + prompt_tokens
                self.latency.observe(seconds, model=model)
            elif outcome == "aborted":
                self.aborted[model] = self.aborted.get(model, 0) + 1

    def tokens_per_second(self, model: str) -> float:
        now = time.monotonic()
        with self.lock:
            window = self.recent.get(model, deque())
            return sum(n for t, n in window if t >= now - RATE_WINDOW_S) / RATE_WINDOW_S

    def render(self, engine_stats: dict[str, dict]) -> str:
        """The /metrics page. engine_stats: model name -> the engine's stats dict."""
        lines: list[str] = []

        def family(name: str, kind: str, help_: str, rows: Callable[[], list[str]]) -> None:
            lines.extend([f"# HELP {name} {help_}", f"# TYPE {name} {kind}", *rows()])

        def per_model(name: str, values: dict[str, float]) -> Callable[[], list[str]]:
            return lambda: [f"{name}{_labels({'model': m})} {_num(v)}"
                            for m, v in sorted(values.items())]

        def engine_gauge(key: str) -> dict[str, float]:
            return {m: float(s.get(key, 0)) for m, s in engine_stats.items()}

        family("lmstack_queue_length", "gauge", "Requests waiting for a slot in the engine.",
               per_model("lmstack_queue_length", engine_gauge("waiting")))
        family("lmstack_running_requests", "gauge", "Sequences in the engine's running batch.",
               per_model("lmstack_running_requests", engine_gauge("running")))
        family("lmstack_prefix_cache_queries_total", "counter",
               "Prompt tokens looked up in the prefix cache.",
               per_model("lmstack_prefix_cache_queries_total",
                         engine_gauge("prefix_cache_queries")))
        family("lmstack_prefix_cache_hits_total", "counter",
               "Prompt tokens whose keys and values came from the prefix cache.",
               per_model("lmstack_prefix_cache_hits_total", engine_gauge("prefix_cache_hits")))
        family("lmstack_prefix_cache_hit_rate", "gauge",
               "Share of looked-up prompt tokens found in the prefix cache.",
               per_model("lmstack_prefix_cache_hit_rate", engine_gauge("prefix_cache_hit_rate")))
        rates = {m: self.tokens_per_second(m) for m in engine_stats}
        family("lmstack_tokens_per_second", "gauge",
               f"Generated tokens per second over the last {RATE_WINDOW_S:g} s.",
               per_model("lmstack_tokens_per_second", rates))
        with self.lock:
            family("lmstack_generated_tokens_total", "counter", "Completion tokens generated.",
                   per_model("lmstack_generated_tokens_total", dict(self.generated_tokens)))
            family("lmstack_prompt_tokens_total", "counter", "Prompt tokens of completed requests.",
                   per_model("lmstack_prompt_tokens_total", dict(self.prompt_tokens)))
            family("lmstack_aborted_requests_total", "counter",
                   "Generations cut short because the client went away.",
                   per_model("lmstack_aborted_requests_total", dict(self.aborted)))
            reqs = dict(self.requests)
            family("lmstack_http_requests_total", "counter", "HTTP requests by endpoint and "
                   "status.", lambda: [f"lmstack_http_requests_total"
                                       f"{_labels({'endpoint': e, 'status': s})} {n}"
                                       for (e, s), n in sorted(reqs.items())])
            family("lmstack_time_to_first_token_seconds", "histogram",
                   "Seconds from request arrival to its first generated token.",
                   lambda: self.ttft.lines("lmstack_time_to_first_token_seconds"))
            family("lmstack_request_latency_seconds", "histogram",
                   "Seconds from request arrival to its last token.",
                   lambda: self.latency.lines("lmstack_request_latency_seconds"))
        return "\n".join(lines) + "\n"
