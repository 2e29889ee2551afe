"""Survey commands: the settings, the question after a resolution, the client's answer.

The question is sent in the unit of work that resolves the conversation
(`survey_after_resolution`, called by `change_conversation_status`), as an ordinary
send request (`MessageSendRequested`, actor ``system:survey``) on the channel a reply
to the conversation leaves by; the delivery worker sends it like any reply. It is not
sent when surveys are off or not for the conversation's inbox, when the channel cannot
carry a message, or when the client opted out of automatic messages on that channel.

The answer by reply is caught on the inbound path (`record_survey_reply`, called by the
ingest command): a reply that is only a score, within `ANSWER_DAYS` of an unanswered
survey, is recorded as `SurveyAnswered` and does not reopen the conversation.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from html import escape
from typing import Any
from uuid import UUID, uuid4

from threadline.domain.commands.base import Commands
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.campaign import SENDABLE_CHANNELS
from threadline.domain.model.contact import Contact, survivor
from threadline.domain.model.conversation import Conversation
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.inbox import Inbox, clean_slug
from threadline.domain.model.message import Message
from threadline.domain.model.reply_channels import REPLY_CHANNEL
from threadline.domain.model.survey import (
    DEFAULT_QUESTION,
    MAX_QUESTION,
    SCORES,
    SURVEY_ACTOR,
    SURVEY_SETTINGS_ID,
    ConversationSurvey,
    SurveySettings,
    parse_score,
    survey_id_for,
    survey_message_id,
)

SurveyLink = Callable[[UUID, int, int], str]
"""(conversation id, resolution, score) -> the signed URL that records that score."""


def _now() -> datetime:
    return ConversationSurvey.SurveyAnswered.create_timestamp()


def survey_after_resolution(
    unit: UnitOfWork,
    conversation: Conversation,
    correlation_id: str,
    link: SurveyLink | None = None,
) -> UUID | None:
    """Ask the client of a just resolved conversation for a score; the message id, or None."""
    settings = unit.find(SURVEY_SETTINGS_ID, SurveySettings)
    if settings is None or not settings.enabled:
        return None
    inbox = None if conversation.inbox_id is None else unit.find(conversation.inbox_id, Inbox)
    if not settings.applies_to(None if inbox is None else inbox.slug):
        return None
    channel = REPLY_CHANNEL.get(conversation.channel, conversation.channel)
    if channel not in SENDABLE_CHANNELS:
        return None
    contact = survivor(unit.get(conversation.contact_id, Contact), lambda i: unit.get(i, Contact))
    if contact.has_opted_out(channel):
        return None
    resolution = conversation.version
    message_id = survey_message_id(conversation.id, resolution)
    survey = unit.find(survey_id_for(conversation.id), ConversationSurvey)
    if unit.exists(message_id) or (survey is not None and survey.sent_for(resolution)):
        return None  # never twice for one resolution
    text, html = settings.question, ""
    if channel == "email" and link is not None:
        urls = [(score, link(conversation.id, resolution, score)) for score in SCORES]
        text += "\n\n" + "\n".join(f"{score}: {url}" for score, url in urls)
        html = (
            f"<p>{escape(settings.question)}</p><p>"
            + " ".join(f'<a href="{escape(url)}">{score}</a>' for score, url in urls)
            + "</p>"
        )
    unit.add(
        Message.request_send(
            id=message_id,
            conversation_id=conversation.id,
            contact_id=conversation.contact_id,
            channel=channel,
            personal={"text": text, "html": html, "attachment_names": []},
            attachments=[],
            actor=SURVEY_ACTOR,
            correlation_id=correlation_id,
        )
    )
    if survey is None:
        survey = unit.add(
            ConversationSurvey(
                id=survey_id_for(conversation.id),
                conversation_id=conversation.id,
                contact_id=conversation.contact_id,
                actor=SURVEY_ACTOR,
                correlation_id=correlation_id,
            )
        )
    survey.send(conversation.id, message_id, channel, resolution, SURVEY_ACTOR, correlation_id)
    return message_id


def record_survey_reply(
    unit: UnitOfWork,
    conversation: Conversation,
    text: str,
    message_id: UUID,
    actor: str,
    correlation_id: str,
) -> bool:
    """Record a client's reply as the answer to the conversation's open survey, if it is one."""
    score = parse_score(text)
    if score is None:
        return False
    survey = unit.find(survey_id_for(conversation.id), ConversationSurvey)
    if survey is None or survey.resolution is None or not survey.open_for(_now()):
        return False
    survey.answer(
        conversation.id, survey.resolution, score, "reply", message_id, actor, correlation_id
    )
    return True


class SurveyCommands(Commands):
    # Set by the service that owns the signing key: the e-mail survey's score links.
    survey_link: SurveyLink | None = None

    def save_survey_settings(
        self, enabled: bool, inboxes: list[str], question: str, actor: str
    ) -> Committed[None]:
        """Switch surveys on or off, for every inbox (`inboxes` empty) or the named ones."""
        slugs = sorted({clean_slug(slug) for slug in inboxes})
        question = " ".join((question or "").split()) or DEFAULT_QUESTION
        if len(question) > MAX_QUESTION:
            raise InvalidInput("question", f"is limited to {MAX_QUESTION} characters")
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> None:
            settings = unit.find(SURVEY_SETTINGS_ID, SurveySettings)
            if settings is None:
                settings = SurveySettings(
                    id=SURVEY_SETTINGS_ID,
                    enabled=enabled,
                    inboxes=slugs,
                    question=question,
                    actor=actor,
                    correlation_id=correlation_id,
                )
                unit.add(settings)
            elif (settings.enabled, settings.inboxes, settings.question) != (
                enabled,
                slugs,
                question,
            ):
                settings.change(enabled, slugs, question, actor, correlation_id)

        return self.writer.submit(command)

    def survey_settings(self) -> dict[str, Any]:
        """The settings as they stand (surveys are off until someone saves them)."""
        settings = self._read_unit().find(SURVEY_SETTINGS_ID, SurveySettings)
        if settings is None:
            return {"enabled": False, "inboxes": [], "question": DEFAULT_QUESTION}
        return {
            "enabled": settings.enabled,
            "inboxes": list(settings.inboxes),
            "question": settings.question,
        }

    def answer_survey_by_link(
        self, conversation_id: UUID, resolution: int, score: int, actor: str = "link:survey"
    ) -> Committed[bool]:
        """A click on a score link: True when recorded, False when the survey is closed
        (answered already, a newer survey sent, or older than `ANSWER_DAYS`)."""
        if score not in SCORES:
            raise InvalidInput("score", "a score from 1 to 5")
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> bool:
            survey = unit.find(survey_id_for(conversation_id), ConversationSurvey)
            if survey is None or not survey.open_for(_now(), resolution):
                return False
            survey.answer(conversation_id, resolution, score, "link", None, actor, correlation_id)
            return True

        return self.writer.submit(command)
