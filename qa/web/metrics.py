"""Prometheus metrics: `GET /metrics` in the text format (prometheus_client).

Requests are counted by route (the URL rule, e.g. `/api/documents/<doc_id>`, so that
ids never become labels), method and status, with a latency histogram per route; the
index's documents, chunks, generation and health are read when scraped. Each app has
its own registry, so that apps made by tests do not share counters.

Under `qa serve --workers N` a scrape reaches whichever worker accepts it, so each worker
keeps its counts in prometheus_client's multiprocess files (`share_between_processes`,
called in each worker before its app is made) and `/metrics` answers the sum over all
workers, those that died included (their counts stay; their in-flight gauge goes).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, request
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from werkzeug.wsgi import ClosingIterator

ROUTE_KEY = "qa.route"
UNMATCHED = "unmatched"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
SHARED_DIR = "PROMETHEUS_MULTIPROC_DIR"


def share_between_processes(directory: str) -> None:
    """Keep this process's metrics in `directory`, which every worker of one server shares
    (prometheus_client's multiprocess mode); call before any metric is made."""
    os.environ[SHARED_DIR] = directory
    values.ValueClass = values.MultiProcessValue()


class Metrics:
    """The app's registry and the instruments the middleware and routes update."""

    def __init__(self, health: Callable[[], Any]):
        self.registry = CollectorRegistry()
        multiprocess = getattr(values.ValueClass, "_multiprocess", False)
        shared = os.environ.get(SHARED_DIR) if multiprocess else None
        # Shared: the instruments write to this process's files, and a scrape reads them all.
        self.scraped = self.registry
        if shared:
            self.scraped = CollectorRegistry()
            MultiProcessCollector(self.scraped, shared)
        self.requests = Counter("qa_http_requests", "HTTP requests answered.",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("qa_http_request_duration_seconds",
                                 "Time from request to the end of the response.", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=self.registry)
        self.asks_in_flight = Gauge("qa_asks_in_flight", "Questions being answered now.",
                                    registry=self.registry, multiprocess_mode="livesum")
        self.stages = Histogram("qa_ask_stage_duration_seconds",
                                "Time a question spends in each stage (embed, vector_search, "
                                "keyword_search, fusion, highlight).", ["stage"],
                                buckets=STAGE_BUCKETS, registry=self.registry)
        self.scraped.register(_IndexCollector(health))

    def observe_stage(self, stage: str, seconds: float) -> None:
        self.stages.labels(stage).observe(seconds)

    def render(self) -> Response:
        return Response(generate_latest(self.scraped), mimetype=None,
                        content_type=CONTENT_TYPE_LATEST)


class _IndexCollector:
    """Index gauges, read from the health check (at most every few seconds) on scrape."""

    def __init__(self, health: Callable[[], Any]):
        self.health = health

    def collect(self) -> Iterable[GaugeMetricFamily]:
        checked = self.health()
        yield GaugeMetricFamily("qa_index_healthy", "1 if the index passes its checks.",
                                value=1.0 if checked.ok else 0.0)
        for name, help_text in (("documents", "Documents in the index."),
                                ("chunks", "Passages in the index."),
                                ("generation", "Changes committed to the index so far.")):
            if name in checked.status:
                yield GaugeMetricFamily(f"qa_index_{name}", help_text,
                                        value=float(checked.status[name]))


class MetricsMiddleware:
    """Counts every response, those of the guards outside Flask included."""

    def __init__(self, app: Callable[..., Iterable[bytes]], metrics: Metrics):
        self.app = app
        self.metrics = metrics

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]
                 ) -> Iterable[bytes]:
        started = time.perf_counter()
        status = ["500"]
        asking = environ.get("PATH_INFO", "").startswith("/api/ask")

        def recording_start_response(code: str, headers: list, exc_info: Any = None) -> Any:
            status[0] = code.split(" ", 1)[0]
            return start_response(code, headers, exc_info)

        def done() -> None:
            if asking:
                self.metrics.asks_in_flight.dec()
            route = environ.get(ROUTE_KEY, UNMATCHED)
            self.metrics.requests.labels(route, environ.get("REQUEST_METHOD", "-"),
                                         status[0]).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)

        if asking:
            self.metrics.asks_in_flight.inc()
        try:
            body = self.app(environ, recording_start_response)
        except BaseException:
            done()
            raise
        return ClosingIterator(body, [done])


def install_metrics(app: Flask, health: Callable[[], Any]) -> Metrics:
    """Add `/metrics` and the route label; the caller wraps app.wsgi_app in the middleware."""
    metrics = Metrics(health)

    @app.before_request
    def _label_route() -> None:
        if request.url_rule is not None:
            request.environ[ROUTE_KEY] = request.url_rule.rule

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        return metrics.render()

    return metrics
