"""Demo service desk: answered, resolved and rated requests for the service report.

`seed_service` switches the satisfaction survey on (every inbox) and adds a few e-mail
clients of its own: each wrote during the last working day before today (the inbound
message is recorded at that moment through `history_clock.recorded_at`), an operator
answered and resolved it now (the seeding's own time), the
survey went out (marked delivered, as the demo's other replies are) and most clients
answered it with a digit. Two more clients are still waiting, one of them unassigned. So
the report shows first-response times from half an hour to a day, a CSAT below 5 and open
requests. Idempotent: the messages' dedup keys are fixed, and a client whose first message
exists already is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from uuid import UUID

from threadline.domain.commands.application import Threadline
from threadline.domain.model.history_clock import recorded_at
from threadline.domain.model.inbound import InboundMessage
from threadline.domain.model.survey import ConversationSurvey, survey_id_for

# (name, question, hours after 09:00 of the last working day, the answer or None, score or None)
PLAN: tuple[tuple[str, str, float, str | None, int | None], ...] = (
    ("Ольга Смирнова", "Где мой заказ №1042?", 0.5, "Заказ передан в доставку.", 5),
    ("Игорь Волков", "Можно поменять адрес доставки?", 2.0, "Да, адрес изменён.", 4),
    ("Mary Jones", "Do you ship to Riga?", 5.0, "Yes, within three days.", 5),
    ("Пётр Кузнецов", "Счёт не пришёл", 26.0, "Отправили счёт повторно.", 2),
    ("Анна Белова", "Нужен акт сверки", 3.0, "Акт во вложении.", None),
    ("John Miller", "Is the warranty two years?", 1.0, "Yes, two years.", 3),
    ("Сергей Орлов", "Перезвоните, пожалуйста", 4.0, None, None),
    ("Lisa Brown", "Invoice has the wrong VAT number", 1.5, None, None),
)


def _message(index: int, part: str, name: str, text: str) -> InboundMessage:
    return InboundMessage.create(
        channel="email",
        dedup_key=f"demo-service-{index}-{part}",
        identities=[("email", f"service-client-{index}@example.com")],
        sender_name=name,
        subject="Вопрос в поддержку" if part == "q" else "",
        text=text,
    )


def _working_morning(now: datetime) -> datetime:
    """09:00 UTC of the last working day before `now`'s: the clients wrote in office hours,
    so the business-hours figures are not zero whenever the demo is seeded."""
    day = now.astimezone(UTC).date() - timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return datetime.combine(day, time(9), tzinfo=UTC)


def seed_service(app: Threadline, now: datetime, operators: Sequence[UUID], actor: str) -> int:
    """Add the demo's service requests; returns how many clients this run added."""
    if not app.survey_settings()["enabled"]:
        app.save_survey_settings(True, [], "", actor)
    added = 0
    base = _working_morning(now)
    for index, (name, question, hours, answer, score) in enumerate(PLAN):
        with recorded_at(base + timedelta(hours=hours)):
            first = app.ingest(_message(index, "q", name, question)).value
        if first.duplicate:
            continue
        added += 1
        conversation = first.conversation_id
        operator = operators[index % len(operators)] if operators else None
        if answer is None:
            if operator is not None and index % 2 == 0:
                app.assign_conversation(conversation, operator, actor)
            continue
        who = f"user:{operator}" if operator is not None else actor
        if operator is not None:
            app.assign_conversation(conversation, operator, actor)
        reply = app.reply(conversation, answer, who).value
        app.record_delivered(reply, f"demo-{reply.hex[:12]}", "demo")
        app.change_conversation_status(conversation, "resolved", who)
        survey: ConversationSurvey = app.repository.get(survey_id_for(conversation))
        if survey.message_id is not None:
            app.record_delivered(survey.message_id, f"demo-{survey.message_id.hex[:12]}", "demo")
        if score is not None:
            app.ingest(_message(index, "score", name, str(score)))
    return added
