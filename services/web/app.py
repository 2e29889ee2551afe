"""Mount the web app on the FastAPI application: static files, pages, error handling."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from threadline.services.web import routes_auth, routes_events
from threadline.services.web.deps import Forbidden, LoginRequired, forbidden_page, login_redirect
from threadline.services.web.security_headers import SecurityHeaders

STATIC = Path(__file__).parent / "static"

# Page modules register here (each exposes `router`); the order is the navigation's.
PAGE_MODULES: list[str] = [
    "threadline.services.web.routes_inbox",
    "threadline.services.web.routes_contacts",
    "threadline.services.web.routes_tasks",
    "threadline.services.web.routes_admin",
    "threadline.services.web.routes_attachments",
]


def install_web(app: FastAPI) -> None:
    import importlib

    app.add_middleware(SecurityHeaders)  # the CSP and friends, on every response
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(routes_auth.router)
    app.include_router(routes_events.router)
    for name in PAGE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise
            continue
        app.include_router(module.router)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, error: LoginRequired) -> Response:
        return login_redirect(request, error.next_url)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, error: Forbidden) -> Response:
        return forbidden_page(request, error.message)
