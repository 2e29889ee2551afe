"""Mount the web app on the FastAPI application: static files, pages, error handling."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from threadline.services.web import (
    routes_admin,
    routes_attachments,
    routes_audit,
    routes_auth,
    routes_companies,
    routes_contacts,
    routes_contracts,
    routes_dashboard,
    routes_deal_documents,
    routes_deal_page,
    routes_deals,
    routes_events,
    routes_inbox,
    routes_new_deal,
    routes_payments,
    routes_reports,
    routes_sales_forms,
    routes_segments,
    routes_statement_upload,
    routes_supplier_orders,
    routes_tasks,
)
from threadline.services.web.deps import Forbidden, LoginRequired, forbidden_page, login_redirect
from threadline.services.web.security_headers import SecurityHeaders

STATIC = Path(__file__).parent / "static"

# The page modules, each with its `router`; the order is the navigation's. Imported by
# name (not looked up from strings) so that the import graph test sees every edge. The
# deals' fixed paths (`/deals/new`, `/deals/board`, `/deals/list`, `/deals/move`) are
# registered before the deal's page takes `/deals/{deal_id}`; so is the statement upload's
# `/payments/import` before a payment's page `/payments/{payment_id}`.
PAGE_MODULES = (
    routes_inbox,
    routes_contacts,
    routes_companies,
    routes_new_deal,
    routes_deals,
    routes_deal_page,
    routes_deal_documents,
    routes_tasks,
    routes_dashboard,
    routes_statement_upload,
    routes_payments,
    routes_contracts,
    routes_supplier_orders,
    routes_sales_forms,
    routes_reports,
    routes_segments,
    routes_admin,
    routes_attachments,
    routes_audit,
)


def install_web(app: FastAPI) -> None:
    app.add_middleware(SecurityHeaders)  # the CSP and friends, on every response
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(routes_auth.router)
    app.include_router(routes_events.router)
    for module in PAGE_MODULES:
        app.include_router(module.router)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, error: LoginRequired) -> Response:
        return login_redirect(request, error.next_url)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, error: Forbidden) -> Response:
        return forbidden_page(request, error.message)
