"""The satisfaction survey's links and its field on a conversation.

An e-mail survey carries one signed link per score, `/s/<token>`: the token names the
conversation, the resolution the survey was sent for and the score, signed with a key of
its own (`SignedLinks`), so a link cannot be changed into another score or another
conversation; a forged or altered token is a 404. The key is kept in the channel state
table, so links keep working across restarts and processes.
"""

from __future__ import annotations

import hmac
from typing import Any
from uuid import UUID

from threadline.domain.commands.application import Threadline
from threadline.projections.service_requests import conversation_survey
from threadline.projections.sql import ViewReader
from threadline.services.channel_state import ChannelStateStore
from threadline.services.signed_links import SignedLinks

SURVEY_PATH = "/s"


class SurveyLinks(SignedLinks):
    """`<public url>/s/<conversation>~<resolution>~<score>.<signature>`."""

    def __init__(self, state: ChannelStateStore, public_url: str) -> None:
        super().__init__(state, public_url, "survey_link_key", SURVEY_PATH)

    def url_for(self, conversation_id: UUID, resolution: int, score: int) -> str:
        return self.url(f"{conversation_id}~{resolution}~{score}")

    def verify_score(self, token: str) -> tuple[UUID, int, int] | None:
        """(conversation id, resolution, score) of a genuine token, else None."""
        ident, dot, _signature = token.partition(".")
        parts = ident.split("~")
        if not dot or len(parts) != 3:
            return None
        try:
            conversation_id, resolution, score = UUID(parts[0]), int(parts[1]), int(parts[2])
        except ValueError:
            return None
        if str(conversation_id) != parts[0] or str(resolution) != parts[1]:
            return None  # one spelling per link: the signed one
        if not hmac.compare_digest(self.token(ident), token):
            return None
        if score not in range(1, 6):
            return None
        return conversation_id, resolution, score


def wire_survey_links(app: Threadline, state: ChannelStateStore, public_url: str) -> SurveyLinks:
    """Give the application the e-mail survey's link maker; the links, for the public route."""
    links = SurveyLinks(state, public_url)
    app.survey_link = links.url_for
    return links


def survey_links_of(app: Threadline) -> SurveyLinks | None:
    owner = getattr(app.survey_link, "__self__", None)
    return owner if isinstance(owner, SurveyLinks) else None


def survey_field(views: ViewReader, conversation_id: str) -> dict[str, Any] | None:
    """The conversation's latest survey for its API item: sent, score (None: no answer)."""
    row = conversation_survey(views, conversation_id)
    if row is None:
        return None
    return {
        "sent_at": row["survey_sent_at"],
        "score": None if row["score"] is None else int(row["score"]),
        "answered_at": row["answered_at"],
        "answered_via": row["answered_via"],
    }
