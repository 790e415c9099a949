"""Prometheus metrics: the API's requests (counts and latency histograms per route) and the flow's
progress read from the store (run_metrics and dead letters), in the text exposition format 0.0.4."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
UNMATCHED = "unmatched"  # the route label of requests no route matched, so labels stay few


class RequestMetrics:
    """Counts by (route, method, status) and a latency histogram by (route, method). The event loop
    is the only writer, so no lock is needed."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, int]] = Counter()
        self._histograms: dict[tuple[str, str], list[float]] = {}  # bucket counts, then sum, then count

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.counts[route, method, status] += 1
        h = self._histograms.get((route, method))
        if h is None:
            h = self._histograms[route, method] = [0.0] * (len(LATENCY_BUCKETS_S) + 2)
        for i, bound in enumerate(LATENCY_BUCKETS_S):
            if seconds <= bound:
                h[i] += 1
                break
        h[-2] += seconds
        h[-1] += 1

    def render(self) -> list[str]:
        lines = _header("qf_api_requests_total", "counter", "HTTP requests answered, by route, method and status.")
        for (route, method, status), n in sorted(self.counts.items()):
            lines.append(f"qf_api_requests_total{_labels(route=route, method=method, status=status)} {n}")
        lines += _header("qf_api_request_duration_seconds", "histogram", "Time to answer a request, by route.")
        for (route, method), h in sorted(self._histograms.items()):
            cumulative = 0.0
            for bound, n in zip(LATENCY_BUCKETS_S, h, strict=False):
                cumulative += n
                labels = _labels(route=route, method=method, le=repr(bound))
                lines.append(f"qf_api_request_duration_seconds_bucket{labels} {cumulative:g}")
            labels = _labels(route=route, method=method, le="+Inf")
            lines.append(f"qf_api_request_duration_seconds_bucket{labels} {h[-1]:g}")
            labels = _labels(route=route, method=method)
            lines.append(f"qf_api_request_duration_seconds_sum{labels} {h[-2]!r}")
            lines.append(f"qf_api_request_duration_seconds_count{labels} {h[-1]:g}")
        return lines


class MetricsMiddleware:
    """Times every HTTP request to the end of its answer and records it under its route's path template."""

    def __init__(self, app: ASGIApp, metrics: RequestMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app fails before answering

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or UNMATCHED
            self.metrics.observe(path, scope["method"], status, time.perf_counter() - started)


def render_flow(run: list[dict[str, Any]], dead_letters: int | None, store_up: bool, now_ns: int) -> list[str]:
    """The flow's latest run per worker (from run_metrics), the dead letters stored, and whether the store answered."""
    lines = _header("qf_store_up", "gauge", "1 if the store answered the metrics queries, else 0.")
    lines.append(f"qf_store_up {int(store_up)}")
    if dead_letters is not None:
        lines += _header("qf_store_dead_letters", "gauge", "Dead letters (bad input messages) in the store.")
        lines.append(f"qf_store_dead_letters {dead_letters}")
    per_worker = (
        ("qf_flow_events_in_total", "counter", "Events read by the flow's latest run, per worker.", "events_in"),
        ("qf_flow_rows_out_total", "counter", "Rows written by the latest run, per worker.", "rows_out"),
        ("qf_flow_dead_letters_total", "counter", "Dead letters of the latest run, per worker.", "dead_letters"),
        ("qf_flow_events_per_second", "gauge", "Events per second of the latest run, per worker.", "events_per_s"),
        (
            "qf_flow_decoder_errors_total",
            "counter",
            "Decoder errors (bugs) of the latest run, per worker.",
            "decoder_errors",
        ),
        (
            "qf_flow_source_errors_total",
            "counter",
            "Kafka errors (retried) of the latest run, per process: the same on each of its workers.",
            "source_errors",
        ),
        (
            "qf_flow_reconnects_total",
            "counter",
            "Venue reconnects of the latest live run, per process: the same on each of its workers.",
            "reconnects",
        ),
        (
            "qf_flow_venue_resyncs_total",
            "counter",
            "New snapshots asked of the venues after a gap by the latest live run, per process.",
            "venue_resyncs",
        ),
    )
    for name, kind, text, column in per_worker:
        lines += _header(name, kind, text)
        lines += _samples(name, run, column)
    lines += _header("qf_flow_lag_seconds", "gauge", "Flow latency, message read to row stored, by quantile.")
    for column, quantile in (("lag_p50_ms", "0.5"), ("lag_p99_ms", "0.99")):
        lines += _samples("qf_flow_lag_seconds", run, column, scale=1e-3, quantile=quantile)
    lines += _header("qf_flow_report_age_seconds", "gauge", "Seconds since each worker last reported.")
    for row in run:
        labels = _labels(run_id=row["run_id"], worker=row["worker"])
        lines.append(f"qf_flow_report_age_seconds{labels} {(now_ns - row['ts']) / 1e9!r}")
    return lines


def exposition(lines: Iterable[str]) -> str:
    return "\n".join(lines) + "\n"


def _samples(name: str, run: list[dict[str, Any]], column: str, scale: float = 1.0, **extra: str) -> list[str]:
    return [
        f"{name}{_labels(run_id=row['run_id'], worker=row['worker'], **extra)} {_number(row[column] * scale)}"
        for row in run
        if row.get(column) is not None  # None or absent: a row written before the column existed
    ]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _header(name: str, kind: str, text: str) -> list[str]:
    return [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]


def _labels(**labels: object) -> str:
    return "{" + ",".join(f'{name}="{_escape(str(value))}"' for name, value in labels.items()) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
