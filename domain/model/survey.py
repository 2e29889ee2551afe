"""The satisfaction survey: one question after a conversation is resolved, one score 1-5.

`SurveySettings` (one aggregate, fixed id) says whether surveys are sent and for which
inboxes (by slug; none named = every inbox), and what the question says. A
`ConversationSurvey` (one per conversation, id from the conversation's) records each
survey sent - one per resolution: the message id is `uuid5(conversation, resolution)`,
where the resolution is the conversation's version at the resolving status change, so a
retry or a replay never sends a second one - and the client's answer.

An answer is a client's reply in that conversation within `ANSWER_DAYS` of the survey
that is just a score (`parse_score`), or a click on a signed link of the e-mail survey.
The first answer counts; later ones are ordinary messages (or a "thank you" page).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

SURVEY_NAMESPACE = uuid5(NAMESPACE_URL, "https://threadline.dev/survey")
SURVEY_SETTINGS_ID = uuid5(SURVEY_NAMESPACE, "settings")
ANSWER_DAYS = 7
SURVEY_ACTOR = "system:survey"
DEFAULT_QUESTION = (
    "How would you rate our answer? Reply with a digit from 1 (bad) to 5 (excellent)."
)
MAX_QUESTION = 1_000
SCORES = range(1, 6)

_DIGIT = re.compile(r"^([1-5])\s*[.!)]?$")
_STARS = re.compile(r"^[⭐★]{1,5}$")


def parse_score(text: str | None) -> int | None:
    """The score a reply gives, if the reply is nothing but a score.

    Accepted: one digit 1-5, optionally followed by ".", "!" or ")" ("5", " 4. "), or one
    to five stars and nothing else ("⭐⭐⭐⭐", "★★★"). Anything else ("5 stars", "10",
    "3, thanks") is an ordinary message.
    """
    cleaned = "".join((text or "").split()).replace("\ufe0f", "")
    if not cleaned:
        return None
    digit = _DIGIT.match(cleaned)
    if digit is not None:
        return int(digit.group(1))
    if _STARS.match(cleaned):
        return len(cleaned)
    return None


def survey_id_for(conversation_id: UUID | str) -> UUID:
    return uuid5(SURVEY_NAMESPACE, f"conversation:{conversation_id}")


def survey_message_id(conversation_id: UUID | str, resolution: int) -> UUID:
    """The id of the survey message sent for one resolution of a conversation."""
    return uuid5(SURVEY_NAMESPACE, f"message:{conversation_id}:{resolution}")


class SurveySettings(Aggregate):
    """Whether surveys go out, for which inboxes (slugs; empty: all), with which question."""

    class SurveySettingsSaved(Aggregate.Created):
        enabled: bool
        inboxes: list[str]
        question: str
        actor: str
        correlation_id: str

    @event(SurveySettingsSaved)
    def __init__(
        self,
        id: UUID,
        enabled: bool,
        inboxes: list[str],
        question: str,
        actor: str,
        correlation_id: str,
    ) -> None:
        self.enabled = enabled
        self.inboxes = list(inboxes)
        self.question = question

    class SurveySettingsChanged(Aggregate.Event):
        enabled: bool
        inboxes: list[str]
        question: str
        actor: str
        correlation_id: str

    @event(SurveySettingsChanged)
    def change(
        self, enabled: bool, inboxes: list[str], question: str, actor: str, correlation_id: str
    ) -> None:
        self.enabled = enabled
        self.inboxes = list(inboxes)
        self.question = question

    def applies_to(self, inbox_slug: str | None) -> bool:
        """Whether a conversation of this inbox (None: no inbox known) gets a survey."""
        if not self.enabled:
            return False
        return not self.inboxes or (inbox_slug is not None and inbox_slug in self.inboxes)


class ConversationSurvey(Aggregate):
    """The surveys of one conversation: the latest one sent and whether it was answered."""

    class ConversationSurveyStarted(Aggregate.Created):
        conversation_id: UUID
        contact_id: UUID
        actor: str
        correlation_id: str

    @event(ConversationSurveyStarted)
    def __init__(
        self, id: UUID, conversation_id: UUID, contact_id: UUID, actor: str, correlation_id: str
    ) -> None:
        self.conversation_id = conversation_id
        self.contact_id = contact_id
        self.resolution: int | None = None
        self.message_id: UUID | None = None
        self.score: int | None = None
        self.resolutions: list[int] = []

    class SurveySent(Aggregate.Event):
        """The question went out (as the send request `message_id`) for one resolution."""

        conversation_id: UUID
        message_id: UUID
        channel: str
        resolution: int
        actor: str
        correlation_id: str

    @event(SurveySent)
    def send(
        self,
        conversation_id: UUID,
        message_id: UUID,
        channel: str,
        resolution: int,
        actor: str,
        correlation_id: str,
    ) -> None:
        self.resolution = resolution
        self.message_id = message_id
        self.score = None
        self.resolutions.append(resolution)

    class SurveyAnswered(Aggregate.Event):
        """The client's score for the survey of `resolution`: by a reply (`message_id`) or by
        a click on a signed link (`via` "link", no message)."""

        conversation_id: UUID
        resolution: int
        score: int
        via: str
        message_id: UUID | None
        actor: str
        correlation_id: str

    @event(SurveyAnswered)
    def answer(
        self,
        conversation_id: UUID,
        resolution: int,
        score: int,
        via: str,
        message_id: UUID | None,
        actor: str,
        correlation_id: str,
    ) -> None:
        self.score = score

    def sent_for(self, resolution: int) -> bool:
        return resolution in self.resolutions

    def open_for(self, now: datetime, resolution: int | None = None) -> bool:
        """Whether the latest survey (of `resolution`, if given) awaits its answer at `now`."""
        if self.resolution is None or self.score is not None:
            return False
        if resolution is not None and resolution != self.resolution:
            return False
        # Only `SurveySent` and `SurveyAnswered` follow the start: unanswered, the latest
        # survey's sending is the last change.
        return now - self.modified_on <= timedelta(days=ANSWER_DAYS)
