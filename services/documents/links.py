"""Document links: where a channel cannot carry a file (SMS, WhatsApp through Twilio, which
takes media only by a public URL), the client gets a signed link to the stored PDF instead.

The link names the document and nothing else, is unguessable (an HMAC under its own key,
`services/signed_links.py`), and serves the PDF exactly as stored; a voided document's
link answers 410. `GET /d/{token}` is the route (`services/api/routes_documents.py`).
"""

from __future__ import annotations

from threadline.services.channel_state import ChannelStateStore
from threadline.services.signed_links import SignedLinks

KEY = "documents:link-key"
PATH = "/d"
FILE_CHANNELS = frozenset({"email", "telegram"})
"""Channels whose adapters send a message's files; any other gets the link in the text."""


class DocumentLinks(SignedLinks):
    def __init__(self, state: ChannelStateStore, public_url: str) -> None:
        super().__init__(state, public_url, KEY, PATH)
