"""The FastAPI application: routers, error handlers, body limit, health check."""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from threadline.services.api import (
    health_details,
    routes_access_log,
    routes_admin,
    routes_attachments,
    routes_audit,
    routes_calls,
    routes_campaigns,
    routes_companies,
    routes_consent_link,
    routes_consents,
    routes_contacts,
    routes_contracts,
    routes_conversations,
    routes_deals,
    routes_document_templates,
    routes_documents,
    routes_exchange_rates,
    routes_forget,
    routes_forms,
    routes_forms_admin,
    routes_hand_over,
    routes_hooks_telegram,
    routes_hooks_twilio,
    routes_inbound,
    routes_inboxes,
    routes_marketing_spend,
    routes_payments,
    routes_pipelines,
    routes_products,
    routes_reports,
    routes_rules,
    routes_sales_plans,
    routes_segments,
    routes_supplier_orders,
    routes_surveys,
    routes_tasks,
    routes_unsubscribe,
)
from threadline.services.api.errors import document_errors, install_error_handlers
from threadline.services.api.limits import BodySizeLimit, StrictJsonBodies
from threadline.services.api.timing import ServerTiming
from threadline.services.api.visibility import ViewsVisibility
from threadline.services.runtime import Runtime
from threadline.services.web import routes_statement_upload
from threadline.services.web.app import install_web

HEALTH_TIMEOUT = 3.0
"""Seconds `/healthz` waits for the database before it answers 503."""

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
        routes_companies,
        routes_conversations,
        routes_tasks,
        routes_calls,
        routes_admin,
        routes_inboxes,
        routes_hooks_twilio,
        routes_hooks_telegram,
        routes_forms,
        routes_forms_admin,
        routes_rules,
        routes_sales_plans,
        routes_unsubscribe,
        routes_campaigns,
        routes_attachments,
        routes_pipelines,
        routes_deals,
        routes_hand_over,
        routes_products,
        routes_exchange_rates,
        routes_document_templates,
        routes_documents,
        routes_payments,
        routes_contracts,
        routes_supplier_orders,
        routes_reports,
        routes_segments,
        routes_marketing_spend,
        routes_surveys,
        routes_audit,
        routes_access_log,
        routes_forget,
        routes_consents,
        routes_consent_link,
    ):
        app.include_router(module.router)
    app.include_router(routes_documents.public_router)  # signed links to PDFs: no login

    @app.get(
        "/healthz",
        tags=["health"],
        responses={
            503: {
                "description": "the database did not answer in time",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["status", "error"],
                            "properties": {"status": {"const": "unavailable"}, "error": {}},
                        }
                    }
                },
            }
        },
    )
    async def healthz(request: Request) -> JSONResponse:
        rt: Runtime = request.app.state.runtime
        try:
            # The library retries a lost database for up to ten attempts; a health check
            # must answer within a load balancer's patience, so it stops waiting first.
            log_position = (
                await asyncio.wait_for(
                    run_in_threadpool(rt.app.recorder.max_notification_id), HEALTH_TIMEOUT
                )
                or 0
            )
            rejected = await asyncio.wait_for(
                run_in_threadpool(rt.channels.rejections.count), HEALTH_TIMEOUT
            )
            # Views and triggers lag, from the log positions: seen by every serving process,
            # whichever process keeps the views or runs the rules.
            lags = await asyncio.wait_for(
                run_in_threadpool(health_details.lag, rt, log_position), HEALTH_TIMEOUT
            )
        except TimeoutError:
            error = f"the database did not answer within {HEALTH_TIMEOUT:.0f} s"
            return JSONResponse({"status": "unavailable", "error": error}, status_code=503)
        except Exception as error:  # the store is down: say so, with 503
            return JSONResponse({"status": "unavailable", "error": str(error)}, status_code=503)
        # A poller that keeps failing (or has stopped getting through) is a mailbox nobody
        # reads: `degraded`, with each inbox's last success and last error to say which.
        pollers = rt.channels.poller_health()
        problems = health_details.problems(rt, lags, pollers)
        if not await health_details.admin_asking(request, rt, HEALTH_TIMEOUT):
            pollers = health_details.for_anyone(pollers)
        return JSONResponse(
            {
                "status": "degraded" if problems else "ok",
                "problems": problems,
                "log_position": log_position,
                **lags,
                "views_restarts": rt.views_restarts(),
                "pollers": pollers,
                "rejected_messages": rejected,
            }
        )

    install_web(app)
    document_errors(app)

    # Inside the size limit, so it reads bounded bodies only; public forms parse their own.
    app.add_middleware(StrictJsonBodies, own_parsers=("/forms/",))
    app.add_middleware(
        BodySizeLimit,
        max_bytes=runtime.settings.max_body_bytes,
        larger={
            "/api/attachments": routes_documents.upload_limit(runtime),
            "/payments/import": routes_statement_upload.body_limit(runtime),
            routes_payments.IMPORT_PATH: routes_payments.body_limit(runtime),
        },
    )
    app.add_middleware(ServerTiming)
    app.add_middleware(ViewsVisibility)
    return app
