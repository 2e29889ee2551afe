"""Consent policies: what a client agrees to, in which words, in which version.

Russia's 152-FZ (art. 9) and the GDPR (art. 7) want consent to processing that is
specific (one purpose each: the processing of personal data to answer an inquiry,
marketing messages, ...), informed (the text the client saw) and provable (when,
how, to which version of the text). A policy is one purpose with its current text;
changing the text makes a new version, and a client's consent to an older version
no longer counts where the current one is required (campaigns skip the client and
forms ask again). The texts are the business's own words, not personal data.
"""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.inbox import clean_slug

POLICY_NAMESPACE = uuid5(NAMESPACE_URL, "https://threadline.dev/consent-policy")
MAX_TITLE = 200
MAX_TEXT = 20_000


def consent_policy_id(purpose: str) -> UUID:
    """A policy is found by its purpose (`uuid5` of the slug: the purpose is no secret)."""
    return uuid5(POLICY_NAMESPACE, clean_slug(purpose))


def clean_policy(purpose: str, title: str, text: str) -> tuple[str, str, str]:
    """The purpose as a slug, the title and the text trimmed; `InvalidInput` otherwise."""
    try:
        slug = clean_slug(purpose)
    except InvalidInput:
        raise InvalidInput(
            "purpose", "a purpose is a slug: 1 to 40 lower-case letters, digits or dashes"
        ) from None
    title, text = " ".join(title.split()), text.strip()
    if not title or len(title) > MAX_TITLE:
        raise InvalidInput("title", f"a title has 1 to {MAX_TITLE} characters")
    if not text or len(text) > MAX_TEXT:
        raise InvalidInput("text", f"the text a client agrees to has 1 to {MAX_TEXT} characters")
    return slug, title, text


class ConsentPolicy(Aggregate):
    """One purpose of processing, its title, its current text and that text's version."""

    class PolicyPublished(Aggregate.Created):
        purpose: str
        title: str
        text: str
        campaigns: bool
        actor: str
        correlation_id: str

    @event(PolicyPublished)
    def __init__(
        self,
        id: UUID,
        purpose: str,
        title: str,
        text: str,
        campaigns: bool,
        actor: str,
        correlation_id: str,
    ) -> None:
        self.purpose = purpose
        self.title = title
        self.text = text
        # Campaigns on this purpose's behalf reach only clients who agreed to this version.
        self.campaigns = campaigns
        self.text_version = 1

    class PolicyRevised(Aggregate.Event):
        """`text_version` grows when the text changes (a new title alone keeps it)."""

        title: str
        text: str
        campaigns: bool
        text_version: int
        actor: str
        correlation_id: str

    def revise(
        self, title: str, text: str, campaigns: bool, actor: str, correlation_id: str
    ) -> bool:
        """Change what changed; False when nothing did (no event)."""
        if (title, text, campaigns) == (self.title, self.text, self.campaigns):
            return False
        version = self.text_version + 1 if text != self.text else self.text_version
        self._revised(title, text, campaigns, version, actor, correlation_id)
        return True

    @event(PolicyRevised)
    def _revised(
        self,
        title: str,
        text: str,
        campaigns: bool,
        text_version: int,
        actor: str,
        correlation_id: str,
    ) -> None:
        self.title = title
        self.text = text
        self.campaigns = campaigns
        self.text_version = text_version
