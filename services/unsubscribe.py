"""Unsubscribe links: a signed, unguessable URL per contact that records an opt-out.

A `SignedLinks` of its own key (kept in the channel state table), so links keep working
across restarts and cannot be forged for another contact.
"""

from __future__ import annotations

from threadline.services.channel_state import ChannelStateStore
from threadline.services.signed_links import SignedLinks

KEY = "unsubscribe:key"


class UnsubscribeLinks(SignedLinks):
    def __init__(self, state: ChannelStateStore, public_url: str) -> None:
        super().__init__(state, public_url, KEY, "/unsubscribe")
