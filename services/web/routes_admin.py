"""The admin screens under ``/admin``: rules, templates, campaigns, forms and inboxes.

Each screen lives in its own module of `threadline.services.web.admin`; this
module only puts their routers together, so the web app registers one router.
"""

from __future__ import annotations

from fastapi import APIRouter

from threadline.services.web.admin import (
    campaigns,
    catalogue,
    document_templates,
    exchange_rates,
    forms,
    hand_over,
    inboxes,
    pipelines,
    rules,
    templates,
)

router = APIRouter(prefix="/admin", include_in_schema=False)
for screen in (
    rules,
    templates,
    campaigns,
    forms,
    inboxes,
    pipelines,
    hand_over,
    catalogue,
    exchange_rates,
    document_templates,
):
    router.include_router(screen.router)
