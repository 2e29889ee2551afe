"""Forgetting a client on request (GDPR art. 17, 152-FZ art. 21): admins only."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter
from pydantic import BaseModel, Field

from threadline.services.api.deps import AdminDep, RuntimeDep
from threadline.services.forgetting import forget

router = APIRouter(prefix="/api/contacts", tags=["contacts"])


class ForgetOut(BaseModel):
    forgotten: list[UUID] = Field(
        description="the contacts forgotten by this request: the one named, the contact it was "
        "merged into and every duplicate merged into that one (empty when all were already)"
    )
    files_deleted: int = Field(description="files of their messages that no one else's name")
    files_kept: int = Field(description="files other contacts' messages name too (kept)")


@router.post("/{contact_id}/forget", response_model=ForgetOut)
def forget_contact(contact_id: UUID, runtime: RuntimeDep, principal: AdminDep) -> ForgetOut:
    """Forget the client: destroy the key their events' personal parts are sealed with,
    append `ContactForgotten` (every view scrubs names, addresses and texts; the history
    keeps its shape: a message came by e-mail on 3 March), release their identities (a
    later message from them starts a new contact) and delete their messages' files that
    no other contact's message names. Irreversible. 404 for an unknown contact."""
    done = forget(runtime, contact_id, principal.actor)
    return ForgetOut(
        forgotten=done.contacts, files_deleted=done.files_deleted, files_kept=done.files_kept
    )
