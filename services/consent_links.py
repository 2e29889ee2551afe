"""Consent links: a signed URL per client and purpose where they agree (again) or withdraw.

When a policy's text changes, consents to the older text stop counting where the
current one is needed (`projections.consents`): a message can ask the client again
with `{{ consent_urls["marketing"] }}` in its template. The page shows the text in
force with an unticked box; agreeing records the consent (`via: link`), and the same
page lets the client withdraw. A `SignedLinks` of its own key, so a link cannot be
forged for another client or another purpose.
"""

from __future__ import annotations

import hmac
from uuid import UUID

from threadline.services.channel_state import ChannelStateStore
from threadline.services.signed_links import SignedLinks

KEY = "consent:key"
SEPARATOR = "~"


class ConsentLinks(SignedLinks):
    def __init__(self, state: ChannelStateStore, public_url: str) -> None:
        super().__init__(state, public_url, KEY, "/consent")

    def url_for(self, contact_id: str, purpose: str) -> str:
        return self.url(f"{contact_id}{SEPARATOR}{purpose}")

    def verify_consent(self, token: str) -> tuple[UUID, str] | None:
        """The client and purpose a genuine token names, else None."""
        ident, _, _signature = token.rpartition(".")
        contact, _, purpose = ident.partition(SEPARATOR)
        try:
            parsed = UUID(contact)
        except ValueError:
            return None
        expected = self.token(f"{parsed}{SEPARATOR}{purpose}")
        if not purpose or not hmac.compare_digest(expected, token):
            return None
        return parsed, purpose


def consent_urls(links: ConsentLinks, purposes: list[str], contact_id: str) -> dict[str, str]:
    """`consent_urls` of a template: the client's link for each published purpose."""
    return {purpose: links.url_for(contact_id, purpose) for purpose in purposes}
