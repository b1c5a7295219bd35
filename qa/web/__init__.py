"""The web service: `create_app(config)` builds the JSON API and the chat page around one
Retriever, loaded once per process."""

from __future__ import annotations

import logging

from flask import Flask

from qa.config import Config
from qa.retriever import Retriever
from qa.web.api import api
from qa.web.auth import load_api_keys
from qa.web.errors import register_error_handlers
from qa.web.guards import GuardMiddleware
from qa.web.health import HealthCheck
from qa.web.metrics import MetricsMiddleware, install_metrics
from qa.web.pages import pages
from qa.web.request_log import RequestLogMiddleware
from qa.web.write_api import write_api

logger = logging.getLogger(__name__)


def create_app(config: Config, retriever: Retriever | None = None) -> Flask:
    """The Flask app; opens the index and loads the model unless a retriever is given.

    Raises IndexMissingError (or IndexMismatchError) if the configured index cannot be used.
    """
    if retriever is None:
        retriever = open_retriever(config)
    app = Flask(__name__)
    app.config["QA"] = config
    # Werkzeug's own limit, as a backstop for any body read outside the ask endpoint.
    app.config["MAX_CONTENT_LENGTH"] = config.server.max_body_bytes
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["qa_retriever"] = retriever
    app.extensions["qa_api_keys"] = load_api_keys(config)
    # Changes by other processes (qa index / add / remove) show up within a second.
    watch = getattr(retriever.engine, "watch", None)
    if watch is not None:
        watch()
    app.register_blueprint(api)
    app.register_blueprint(write_api)
    app.register_blueprint(pages)
    register_error_handlers(app)
    app.extensions["qa_health"] = health = HealthCheck(retriever.engine)
    metrics = install_metrics(app, health)
    retriever.stages.observe = metrics.observe_stage
    guard = GuardMiddleware(app.wsgi_app, config.server)
    app.extensions["qa_guard"] = guard
    # Outermost first: the log line and the metrics also cover what the guards refuse.
    app.wsgi_app = RequestLogMiddleware(  # type: ignore[method-assign]
        MetricsMiddleware(guard, metrics))
    return app


def open_retriever(config: Config) -> Retriever:
    """Open the configured index (before the slow model load, to fail fast) and the model."""
    from qa.embedder import create_embedder
    from qa.index.saved_index import open_index

    engine = open_index(config)
    logger.info("loading model %s", config.model.name)
    return Retriever(config, engine, create_embedder(config.model))
