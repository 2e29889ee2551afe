"""The tasks screen: the sections by due day, complete and reschedule, the notifications."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_runtime
from tests.web.helpers import create_user, web_client
from threadline.domain.model.automation import Notification
from threadline.projections.automation import notification
from threadline.services.runtime import Runtime

HX = {"HX-Request": "true"}


@pytest.fixture
def runtime(sqlite_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(sqlite_url, attachments_dir=str(tmp_path / "attachments"))
    try:
        yield rt
    finally:
        rt.close()


def noon_today() -> datetime:
    """Today at noon (UTC): "today" whatever the hour the test runs at."""
    return datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


def new_task(runtime: Runtime, title: str, due: datetime | None, assignee: UUID, **kw: Any) -> str:
    committed = runtime.app.create_task(
        actor="test", title=title, type="call", due_at=due, assignee_id=assignee, **kw
    )
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    return str(committed.value)


def section(page: str, name: str) -> str:
    """The HTML of one section (empty when the page has none of that name)."""
    found = re.search(rf'id="tasks-{name}".*?</section>', page, re.S)
    return found.group(0) if found else ""


def notify(runtime: Runtime, user_id: UUID, text: str, contact_id: UUID | None = None) -> str:
    """A notification as a rule's `notify` action records it."""
    notification_id = uuid4()

    def command(unit: Any) -> None:
        unit.add(
            Notification(
                id=notification_id,
                user_id=user_id,
                contact_id=contact_id,
                conversation_id=None,
                email=False,
                personal={"text": text},
                actor="rule:test",
                correlation_id=str(notification_id),
            )
        )

    committed = runtime.app.writer.submit(command)
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    return str(notification_id)


def seed(runtime: Runtime, me: UUID) -> dict[str, str]:
    contact = runtime.app.create_contact(actor="test", name="Olga Smirnova")
    assert runtime.wait_for_views(contact.notification_id, timeout=60)
    colleague = create_user(runtime, "colleague@example.com", "operator", name="Colleague")
    noon = noon_today()
    return {
        "yesterday": new_task(
            runtime, "Send the offer", noon - timedelta(days=1), me, contact_id=contact.value
        ),
        "today": new_task(runtime, "Call Olga", noon, me),
        "in3": new_task(runtime, "Prepare the demo", noon + timedelta(days=3), me),
        "in30": new_task(runtime, "Renewal talk", noon + timedelta(days=30), me),
        "undated": new_task(runtime, "Someday", None, me),
        "theirs": new_task(runtime, "Their call", noon, colleague),
    }


def test_tasks_fall_into_the_right_sections(runtime: Runtime) -> None:
    client, _, me = web_client(runtime)
    ids = seed(runtime, me)
    page = client.get("/tasks")
    assert page.status_code == 200
    overdue, today = section(page.text, "overdue"), section(page.text, "today")
    upcoming, undated = section(page.text, "upcoming"), section(page.text, "undated")
    assert ids["yesterday"] in overdue and "Olga Smirnova" in overdue
    assert ids["today"] in today and ids["yesterday"] not in today
    assert ids["in3"] in upcoming and ids["today"] not in upcoming
    assert ids["undated"] in undated
    assert ids["in30"] not in page.text  # beyond the next seven days
    assert ids["theirs"] not in page.text  # "mine" is the default
    everyone = client.get("/tasks?scope=all")
    assert ids["theirs"] in section(everyone.text, "today") and "Colleague" in everyone.text
    fragment = client.get("/tasks/lists?scope=all", headers=HX)
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert 'data-live="tasks"' in fragment.text and ids["theirs"] in fragment.text


def test_complete_and_reschedule(runtime: Runtime) -> None:
    client, csrf, me = web_client(runtime)
    ids = seed(runtime, me)
    done = client.post(f"/tasks/{ids['today']}/complete", data={"csrf_token": csrf}, headers=HX)
    assert done.status_code == 200 and 'id="task-lists"' in done.text
    assert ids["today"] not in done.text
    assert runtime.queries.task(ids["today"])["status"] == "done"
    again = client.post(f"/tasks/{ids['today']}/complete", data={"csrf_token": csrf}, headers=HX)
    assert again.status_code == 409 and "already done" in again.text
    # Reschedule: the datetime-local value is read as UTC; the task moves to "today".
    when = noon_today().replace(hour=18).strftime("%Y-%m-%dT%H:%M")
    moved = client.post(
        f"/tasks/{ids['in3']}/reschedule", data={"due_at": when, "csrf_token": csrf}, headers=HX
    )
    assert moved.status_code == 200
    assert ids["in3"] in section(moved.text, "today")
    assert runtime.queries.task(ids["in3"])["due_at"] == f"{when}:00.000000Z"
    wrong = client.post(
        f"/tasks/{ids['in3']}/reschedule",
        data={"due_at": "next tuesday", "csrf_token": csrf},
        headers=HX,
    )
    assert wrong.status_code == 422
    assert (
        f'data-error-for="{ids["in3"]}"' in wrong.text and "expected a date and time" in wrong.text
    )
    assert runtime.queries.task(ids["in3"])["due_at"] == f"{when}:00.000000Z"
    # Without HTMX: back to the page the form was on.
    plain = client.post(
        f"/tasks/{ids['undated']}/complete",
        data={"csrf_token": csrf, "scope": "all"},
        follow_redirects=False,
    )
    assert plain.status_code == 303 and plain.headers["location"] == "/tasks?scope=all"
    missing = client.post(f"/tasks/{uuid4()}/complete", data={"csrf_token": csrf}, headers=HX)
    assert missing.status_code == 404


def test_completing_from_the_client_card_answers_with_the_card(runtime: Runtime) -> None:
    client, csrf, me = web_client(runtime)
    ids = seed(runtime, me)
    contact_id = runtime.queries.task(ids["yesterday"])["contact_id"]
    card = client.get(f"/contacts/{contact_id}/card")
    assert f'hx-post="/tasks/{ids["yesterday"]}/complete"' in card.text
    answer = client.post(
        f"/tasks/{ids['yesterday']}/complete",
        data={"csrf_token": csrf, "view": "card", "next": f"/contacts/{contact_id}"},
        headers=HX,
    )
    assert answer.status_code == 200 and 'id="contact-card"' in answer.text
    assert f"/tasks/{ids['yesterday']}/complete" not in answer.text
    assert runtime.queries.task(ids["yesterday"])["status"] == "done"


def test_notifications_are_listed_and_marked_read(runtime: Runtime) -> None:
    client, csrf, me = web_client(runtime, "operator", "ru")
    mine = notify(runtime, me, "Olga asked for a call back")
    stranger = create_user(runtime, "someone@example.com", "operator")
    theirs = notify(runtime, stranger, "Not for you")
    page = client.get("/tasks")
    assert "Уведомления" in page.text
    block = re.search(r'id="notifications".*?</section>', page.text, re.S)
    assert block and "Olga asked for a call back" in block.group(0)
    assert "Not for you" not in page.text
    read = client.post(f"/ui/notifications/{mine}/read", data={"csrf_token": csrf}, headers=HX)
    assert read.status_code == 200 and "Olga asked for a call back" not in read.text
    row = notification(runtime.views, mine)
    assert row is not None and row.read is True
    other = client.post(f"/ui/notifications/{theirs}/read", data={"csrf_token": csrf}, headers=HX)
    assert other.status_code == 404
    theirs_now = notification(runtime.views, theirs)
    assert theirs_now is not None and theirs_now.read is False
    fragment = client.get("/tasks/notifications")
    assert fragment.status_code == 200 and "Непрочитанных уведомлений нет." in fragment.text


@pytest.mark.parametrize("locale", ["en", "ru"])
def test_an_auditor_sees_the_tasks_and_can_change_nothing(runtime: Runtime, locale: str) -> None:
    client, csrf, me = web_client(runtime, "auditor", locale)
    ids = seed(runtime, me)
    note = notify(runtime, me, "Look at this")
    page = client.get("/tasks")
    assert page.status_code == 200 and ids["today"] in page.text
    assert ("Просрочены" in page.text) is (locale == "ru")
    buttons = re.findall(r"<button[^>]*>", section(page.text, "today"))
    assert buttons and all(" disabled" in b for b in buttons)
    refused = [
        client.post(f"/tasks/{ids['today']}/complete", data={"csrf_token": csrf}),
        client.post(
            f"/tasks/{ids['today']}/reschedule",
            data={"csrf_token": csrf, "due_at": "2030-01-01T10:00"},
        ),
        client.post(f"/ui/notifications/{note}/read", data={"csrf_token": csrf}),
    ]
    assert [r.status_code for r in refused] == [403, 403, 403]
    task = runtime.queries.task(ids["today"])
    assert task["status"] == "open" and task["due_at"].startswith(noon_today().date().isoformat())


def test_a_post_without_the_csrf_token_is_refused(runtime: Runtime) -> None:
    client, _, me = web_client(runtime)
    ids = seed(runtime, me)
    assert client.post(f"/tasks/{ids['today']}/complete").status_code == 403
    assert (
        client.post(f"/tasks/{ids['today']}/complete", data={"csrf_token": "x"}).status_code == 403
    )
    assert runtime.queries.task(ids["today"])["status"] == "open"


def test_logged_out_visitors_go_to_the_login_page(runtime: Runtime) -> None:
    from threadline.services.api.app import create_app

    client = TestClient(create_app(runtime))
    answer = client.get("/tasks", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
