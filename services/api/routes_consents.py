"""Consent (152-FZ art. 9, GDPR art. 7): policies, each client's consents, a person's data.

A policy is one purpose of processing with the text a client agrees to; changing the
text makes a new version, and consents to an older one show as `outdated` (campaigns
skip those clients when the policy is marked for campaigns; forms ask again). Forms
record consents with the message (a separate, unticked box per purpose); an operator
who has a client's consent in writing, or their withdrawal, records it here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from threadline.domain.model.errors import NotFound
from threadline.projections.consents import (
    ConsentRow,
    PolicyRow,
    consent_policies,
    consent_policy,
    consents_of,
)
from threadline.projections.privacy import rows_of_contact
from threadline.services.api.deps import AdminDep, PrincipalDep, RuntimeDep, WriterDep

router = APIRouter(tags=["consent"])


class PolicyIn(BaseModel):
    title: str = Field(min_length=1, max_length=200, description="what the box says")
    text: str = Field(min_length=1, max_length=20_000, description="the text the client agrees to")
    campaigns: bool = Field(
        False, description="campaigns reach only clients who agreed to the text in force"
    )


class ConsentIn(BaseModel):
    purpose: str = Field(min_length=1, max_length=40)
    via: str = Field(
        "operator", min_length=1, max_length=60,
        description="how it was obtained: `operator` (in writing, on paper), `phone`, ...",
    )  # fmt: skip


class WithdrawIn(BaseModel):
    reason: str = Field("", max_length=500, description="the client's words, if any")
    via: str = Field("operator", min_length=1, max_length=60)


@router.get("/api/consent-policies", response_model=list[PolicyRow])
def list_policies(runtime: RuntimeDep, principal: PrincipalDep) -> list[PolicyRow]:
    """Every purpose with its current text and version."""
    return consent_policies(runtime.views)


@router.put("/api/consent-policies/{purpose}", response_model=PolicyRow)
def put_policy(purpose: str, body: PolicyIn, runtime: RuntimeDep, principal: AdminDep) -> PolicyRow:
    """Publish or revise a purpose's policy (admins). A changed text is a new version:
    consents to the older one become `outdated`."""
    committed = runtime.app.publish_consent_policy(
        purpose, body.title, body.text, body.campaigns, principal.actor
    )
    runtime.wait_for_views(committed.notification_id)
    row = consent_policy(runtime.views, purpose.strip().lower())
    if row is None:
        raise NotFound("consent policy", purpose)
    return row


@router.get("/api/contacts/{contact_id}/consents", response_model=list[ConsentRow])
def get_consents(
    contact_id: UUID, runtime: RuntimeDep, principal: PrincipalDep
) -> list[ConsentRow]:
    """Where the client stands on each purpose: `current`, `outdated`, `withdrawn`, `none`."""
    if runtime.queries.contact(str(contact_id)) is None:
        raise NotFound("contact", contact_id)
    return consents_of(runtime.views, contact_id)


@router.post("/api/contacts/{contact_id}/consents", response_model=list[ConsentRow])
def post_consent(
    contact_id: UUID, body: ConsentIn, runtime: RuntimeDep, principal: WriterDep
) -> list[ConsentRow]:
    """Record a consent the business has in writing (to the text in force). 404 for an
    unknown contact or purpose."""
    committed = runtime.app.give_consent(contact_id, body.purpose, body.via, principal.actor)
    runtime.wait_for_views(committed.notification_id)
    return consents_of(runtime.views, contact_id)


@router.post(
    "/api/contacts/{contact_id}/consents/{purpose}/withdraw", response_model=list[ConsentRow]
)
def withdraw_consent(
    contact_id: UUID, purpose: str, body: WithdrawIn, runtime: RuntimeDep, principal: WriterDep
) -> list[ConsentRow]:
    """Record that the client withdrew the consent (their reason stays theirs: personal)."""
    committed = runtime.app.withdraw_consent(
        contact_id, purpose, body.via, body.reason, principal.actor
    )
    runtime.wait_for_views(committed.notification_id)
    return consents_of(runtime.views, contact_id)


@router.get("/api/contacts/{contact_id}/personal-data")
def personal_data(
    contact_id: UUID, request: Request, runtime: RuntimeDep, principal: AdminDep
) -> dict[str, Any]:
    """Everything the views keep about the client, by table, as JSON: what a person asking
    for their data (GDPR art. 15 and 20, 152-FZ art. 14) is given. Recorded in the access
    log as an export. 404 for an unknown contact."""
    if runtime.queries.contact(str(contact_id)) is None:
        raise NotFound("contact", contact_id)
    runtime.access_log.record(
        principal, "export", f"personal-data/{contact_id}", via="api", path=request.url.path
    )
    return {
        "contact_id": str(contact_id),
        "exported_at": datetime.now(UTC).isoformat(),
        "tables": rows_of_contact(runtime.views, contact_id),
    }
