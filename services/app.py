"""The HTTP application: every service's router, health, metrics, problem errors."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fastapi.responses import PlainTextResponse
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from npsloop.services.analytics import dashboard
from npsloop.services.analytics.api import router as analytics_router
from npsloop.services.analytics.gauges import refresh_gauges
from npsloop.services.classifier import service as classifier_service
from npsloop.services.classifier.api import classifier_router
from npsloop.services.classifier.api import router as classification_router
from npsloop.services.customers.api import router as customers_router
from npsloop.services.deliveries.api import router as deliveries_router
from npsloop.services.followup.api import router as tasks_router
from npsloop.services.followup.loop_api import router as loop_router
from npsloop.services.ingest.api import router as responses_router
from npsloop.services.ingest.fast_path import IngestFastPath
from npsloop.services.ingest.writer import GroupCommitWriter
from npsloop.services.integrations.api import router as integrations_router
from npsloop.services.privacy.api import audit_router as privacy_audit_router
from npsloop.services.privacy.api import router as privacy_router
from npsloop.services.runtime import WORKER_ROLES, Runtime
from npsloop.shared.api_docs import serve_api_docs
from npsloop.shared.auth import SCOPES, KeyCache, Principal
from npsloop.shared.observability import metrics
from npsloop.shared.problems import TITLES, document_problems, install_problem_handlers, problem_response
from npsloop.shared.slow_clients import BodyDeadline
from npsloop.shared.storable_input import StorableInputMiddleware
from npsloop.shared.web import (
    BodyLimitMiddleware,
    JsonBodyMiddleware,
    RequestMetricsMiddleware,
    document_scopes,
    require_any,
)


class NpsloopApp(FastAPI):
    """FastAPI with one lean route in front: valid single POSTs skip the framework stack
    (services/ingest/fast_path.py); every other request, and every error, goes through it."""

    fast_path: IngestFastPath | None = None
    body_deadline: BodyDeadline | None = None

    async def __call__(self, scope, receive, send) -> None:
        if self.body_deadline is not None and scope["type"] == "http":
            await self.body_deadline(scope, receive, send)  # calls route() within a deadline
            return
        await self.route(scope, receive, send)

    async def route(self, scope, receive, send) -> None:
        if self.fast_path is not None and IngestFastPath.matches(scope):
            await self.fast_path(scope, receive, send)
            return
        await super().__call__(scope, receive, send)

    async def full_stack(self, scope, receive, send) -> None:
        await super().__call__(scope, receive, send)


def create_app(runtime: Runtime, *, worker_roles: tuple[str, ...] = WORKER_ROLES) -> FastAPI:
    """The API; with ``worker_roles`` it also runs those background roles in its lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await runtime.start(worker_roles)  # with no roles: only the classifier reload, for corrections
        try:
            yield
        finally:
            await app.state.ingest_writer.close()
            await runtime.stop()

    app = NpsloopApp(
        title="npsloop",
        version="0.1.0",
        lifespan=lifespan,
        description="Closes the Net Promoter Score loop: responses in, classified, followed up.",
        docs_url=None,  # served by serve_api_docs from shipped assets instead of CDNs
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.db = runtime.db
    app.state.clock = runtime.clock
    app.state.settings = runtime.settings
    app.state.ingest_writer = GroupCommitWriter(runtime.db, runtime.clock)
    # GET /v1/responses/{id} shows the classification; ingest may not import the classifier.
    app.state.classification_reader = classifier_service.current_classification
    app.state.key_cache = KeyCache()
    app.fast_path = IngestFastPath(app, app.full_stack, max_bytes=runtime.settings.max_body_bytes)
    app.body_deadline = BodyDeadline(app.route, seconds=runtime.settings.request_body_timeout_seconds)
    install_problem_handlers(app)
    # Innermost of the three: the body limit is enforced while it reads the body.
    app.add_middleware(StorableInputMiddleware, per_item_paths=frozenset({"/v1/responses/batch"}))
    app.add_middleware(BodyLimitMiddleware, max_bytes=runtime.settings.max_body_bytes)
    app.add_middleware(JsonBodyMiddleware)
    app.add_middleware(RequestMetricsMiddleware)
    app.include_router(responses_router)
    app.include_router(classification_router)
    app.include_router(classifier_router)
    app.include_router(tasks_router)
    app.include_router(deliveries_router)
    app.include_router(loop_router)
    app.include_router(analytics_router)
    app.include_router(privacy_router)
    app.include_router(customers_router)
    app.include_router(integrations_router)
    app.include_router(privacy_audit_router)
    app.include_router(dashboard.router)
    app.mount("/dashboard", dashboard.assets(), name="dashboard")
    serve_api_docs(app)
    _document_errors(app)

    @app.get("/v1/me", tags=["auth"])
    async def whoami(principal: Annotated[Principal, Depends(require_any(*SCOPES))]) -> dict[str, Any]:
        """The API key's name and scopes: what a client (the dashboard) may show this key."""
        return {"name": principal.name, "scopes": sorted(principal.scopes)}

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["ops"],
        responses={503: {"description": "The database or the event transport does not answer (see checks)"}},
    )
    async def readyz() -> Any:
        """The database and the event transport answer."""
        checks: dict[str, str] = {}
        for name, check in (("database", runtime.db.ping), ("bus", runtime.transport.check)):
            try:
                await check()
                checks[name] = "ok"
            except Exception as exc:
                checks[name] = f"unavailable: {type(exc).__name__}"
        ready = all(v == "ok" for v in checks.values())
        # npsloop up's second process (services/delivery_process.py) is shown, but the API
        # takes responses without it: they wait safely until it is back.
        delivery_process = getattr(app.state, "delivery_process", None)
        if delivery_process is not None:
            checks["delivery_process"] = "ok" if delivery_process.running else "unavailable: restarting"
        if ready:
            return {"status": "ok", "checks": checks}
        return problem_response(503, TITLES[503], "a dependency is not reachable", checks=checks)

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    async def prometheus_metrics() -> PlainTextResponse:
        # Gauges come from the database at scrape time, so they are right whichever
        # process did the work; a database outage must not hide the other metrics.
        # On Kafka the broker holds consumer offsets, so only the relay backlog is ours to tell.
        relayed = bool(runtime.settings.kafka_bootstrap_servers)
        subscribed = [] if relayed else [(s.consumer, t) for s in runtime.subscriptions() for t in s.topics]
        try:
            async with runtime.db.sessions() as session:
                await refresh_gauges(session, metrics, relayed=relayed, subscribed=subscribed, now=runtime.clock.now())
        except Exception:
            logging.getLogger("npsloop.metrics").warning("gauges not refreshed", exc_info=True)
        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _document_errors(app: FastAPI) -> None:
    """/openapi.json with the problem+json errors the API really answers (``document_problems``)."""
    default = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _hoist_defs(document_problems(document_scopes(default())))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _hoist_defs(document: dict[str, Any]) -> dict[str, Any]:
    """Move JSON Schema ``$defs`` that a route wrote inline (a body it reads itself, to verify a
    signature) into ``components/schemas``: OpenAPI tools resolve references only there."""
    components = document.setdefault("components", {}).setdefault("schemas", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            for name, schema in node.pop("$defs", {}).items():
                components.setdefault(name, walk(schema))
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                node["$ref"] = "#/components/schemas/" + ref.removeprefix("#/$defs/")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        return node

    walk(document.get("paths", {}))
    return document
