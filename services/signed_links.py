"""Signed links: an unguessable public URL naming one id, that no one can forge for another.

The signature is an HMAC of the id with a key generated once per kind of link and kept in
the channel state table, so links keep working across restarts and processes. Used for
unsubscribe links (`services/unsubscribe.py`) and for a document sent where a file cannot
go (an SMS carries a link to the PDF: `services/documents/links.py`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from uuid import UUID

from threadline.services.channel_state import ChannelStateStore


class SignedLinks:
    """Links `<public url><path>/<id>.<signature>` under their own key (`key_name`)."""

    def __init__(self, state: ChannelStateStore, public_url: str, key_name: str, path: str) -> None:
        self.state = state
        self.public_url = public_url.rstrip("/")
        self.key_name = key_name
        self.path = path
        self._key: bytes | None = None

    def key(self) -> bytes:
        if self._key is None:
            stored = self.state.get(self.key_name)
            if stored is None:
                stored = secrets.token_urlsafe(32)
                self.state.set(self.key_name, stored)
            self._key = stored.encode()
        return self._key

    def token(self, ident: str) -> str:
        digest = hmac.new(self.key(), ident.encode(), hashlib.sha256).digest()[:16]
        return f"{ident}.{base64.urlsafe_b64encode(digest).decode().rstrip('=')}"

    def url(self, ident: str) -> str:
        return f"{self.public_url}{self.path}/{self.token(ident)}"

    def verify(self, token: str) -> UUID | None:
        """The id a genuine token names, else None."""
        ident, _, _signature = token.partition(".")
        try:
            parsed = UUID(ident)
        except ValueError:
            return None
        if not hmac.compare_digest(self.token(str(parsed)), token):
            return None
        return parsed
