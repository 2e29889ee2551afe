"""Forgetting a client on request, end to end: the log, the views, the files.

`threadline.domain.commands.forget` destroys the contacts' keys and appends
`ContactForgotten`; the views scrub their rows when they read it. What is left is
outside the log: the files of the client's messages, kept once per content
(SHA-256) and possibly shared with other clients' messages (a price list sent to
many). Each file of the forgotten messages that no other contact's message names
is deleted; a shared one is kept, since it is another client's data too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING
from uuid import UUID

from threadline.channels.attachments import AttachmentStore
from threadline.projections.privacy import file_named_by_others, message_files
from threadline.projections.sql import ViewReader

if TYPE_CHECKING:
    from threadline.services.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Forgotten:
    """What forgetting did: the contacts forgotten now, the files deleted and kept."""

    contacts: list[UUID]
    files_deleted: int
    files_kept: int


def forget(runtime: Runtime, contact_id: UUID, actor: str) -> Forgotten:
    """Forget the contact (and its merged duplicates): keys, log, views, then files.

    Raises `NotFound` for an unknown contact. Irreversible; forgetting again is a no-op."""
    committed = runtime.app.forget_contact(contact_id, actor)
    if not runtime.wait_for_views(committed.notification_id, timeout=60):
        # The keys are gone and the events stored: the views scrub when they get there.
        log.warning(
            "forgetting %s: the views are still behind; they scrub when they catch up", contact_id
        )
    contacts = committed.value
    files = message_files(runtime.views, contacts)
    deleted, kept = delete_unshared_files(
        runtime.views, runtime.attachment_access.store, files, contacts
    )
    return Forgotten(contacts=contacts, files_deleted=deleted, files_kept=kept)


def delete_unshared_files(
    views: ViewReader, store: AttachmentStore, hashes: set[str], contact_ids: list[UUID]
) -> tuple[int, int]:
    """Delete the files no other contact's message names; (deleted, kept)."""
    deleted = kept = 0
    for digest in sorted(hashes):
        if file_named_by_others(views, digest, contact_ids):
            kept += 1
            continue
        try:
            store.path_for(digest).unlink(missing_ok=True)
            deleted += 1
        except (OSError, ValueError):
            log.warning("a forgotten contact's file %s could not be deleted", digest, exc_info=True)
    return deleted, kept
