"""Unsubscribe links: a signed, unguessable URL per contact that records an opt-out.

The signature is an HMAC of the contact id with a key generated once and kept
in the channel state table, so links keep working across restarts and cannot
be forged for another contact.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from uuid import UUID

from threadline.services.channel_state import ChannelStateStore

KEY = "unsubscribe:key"


class UnsubscribeLinks:
    def __init__(self, state: ChannelStateStore, public_url: str) -> None:
        self.state = state
        self.public_url = public_url.rstrip("/")
        self._key: bytes | None = None

    def key(self) -> bytes:
        if self._key is None:
            stored = self.state.get(KEY)
            if stored is None:
                stored = secrets.token_urlsafe(32)
                self.state.set(KEY, stored)
            self._key = stored.encode()
        return self._key

    def token(self, contact_id: str) -> str:
        digest = hmac.new(self.key(), contact_id.encode(), hashlib.sha256).digest()[:16]
        return f"{contact_id}.{base64.urlsafe_b64encode(digest).decode().rstrip('=')}"

    def url(self, contact_id: str) -> str:
        return f"{self.public_url}/unsubscribe/{self.token(contact_id)}"

    def verify(self, token: str) -> UUID | None:
        contact_id, _, _signature = token.partition(".")
        try:
            parsed = UUID(contact_id)
        except ValueError:
            return None
        if not hmac.compare_digest(self.token(str(parsed)), token):
            return None
        return parsed
