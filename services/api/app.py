"""The FastAPI application: routers, error handlers, body limit, health check."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from threadline.services.api import (
    routes_admin,
    routes_contacts,
    routes_conversations,
    routes_inbound,
    routes_tasks,
)
from threadline.services.api.errors import install_error_handlers
from threadline.services.api.limits import BodySizeLimit
from threadline.services.runtime import Runtime

log = logging.getLogger("threadline.api")

DESCRIPTION = """Threadline's HTTP API. Every `/api/` call needs `Authorization: Bearer <token>`
(a user's API token or `THREADLINE_ADMIN_TOKEN`). Writes answer once the change is in the
log and, within a short wait, in the read models, so a following read sees it."""


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(title="Threadline", version="0.1.0", description=DESCRIPTION)
    app.state.runtime = runtime
    install_error_handlers(app)
    for module in (
        routes_inbound,
        routes_contacts,
        routes_conversations,
        routes_tasks,
        routes_admin,
    ):
        app.include_router(module.router)

    @app.get("/healthz", tags=["health"])
    def healthz(request: Request) -> JSONResponse:
        rt: Runtime = request.app.state.runtime
        try:
            log_position = rt.app.recorder.max_notification_id() or 0
        except Exception as error:  # the store is down: say so, with 503
            return JSONResponse({"status": "unavailable", "error": str(error)}, status_code=503)
        views = rt.views_position()
        return JSONResponse(
            {
                "status": "ok" if rt.views_healthy() else "degraded",
                "log_position": log_position,
                "views_position": views,
                "views_lag": max(0, log_position - views),
            }
        )

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse(
            "<!doctype html><meta charset=utf-8><title>Threadline</title>"
            "<h1>Threadline</h1><p>The API is running. Its reference is at "
            "<a href='/docs'>/docs</a>. The operator web app arrives with the next release.</p>"
        )

    app.add_middleware(BodySizeLimit, max_bytes=runtime.settings.max_body_bytes)
    return app
