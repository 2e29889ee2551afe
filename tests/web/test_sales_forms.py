"""The forms where operators work: new task, log a call (card and inbox), new client.

Each form creates what it says through the same commands as the API (checked in the views),
shows a refusal next to the field it names with the API's status and keeps what was typed,
and renders in Russian. Auditors cannot post them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_runtime
from tests.web.helpers import create_user, web_client
from threadline.domain.model.inbound import InboundMessage
from threadline.projections.queries import ContactFilter
from threadline.projections.tasks import tasks_of_contact, tasks_of_conversation
from threadline.services.runtime import Runtime

HX = {"HX-Request": "true"}


@pytest.fixture
def runtime(sqlite_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(sqlite_url, attachments_dir=str(tmp_path / "attachments"))
    try:
        yield rt
    finally:
        rt.close()


def new_contact(runtime: Runtime, name: str = "Olga Smirnova") -> str:
    committed = runtime.app.create_contact(actor="test", name=name)
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    return str(committed.value)


def new_conversation(runtime: Runtime) -> tuple[str, str]:
    """An e-mail from a client: (conversation id, contact id)."""
    committed = runtime.app.ingest(
        InboundMessage.create(
            channel="email",
            dedup_key="m-1",
            identities=[("email", "anna@example.com")],
            sender_name="Anna Petrova",
            subject="Price list",
            text="Send me the prices, please",
        )
    )
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    return str(committed.value.conversation_id), str(committed.value.contact_id)


def post(client: TestClient, url: str, csrf: str, data: dict[str, str], htmx: bool = True) -> Any:
    headers = HX if htmx else {}
    return client.post(
        url, data={"csrf_token": csrf, **data}, headers=headers, follow_redirects=False
    )


def error_for(html: str, key: str) -> str:
    found = re.search(rf'data-error-for="{re.escape(key)}">([^<]*)<', html)
    return found.group(1) if found else ""


def test_the_client_page_loads_the_forms_and_a_new_task_lands_on_the_card(
    runtime: Runtime,
) -> None:
    client, csrf, me = web_client(runtime, "operator")
    colleague = create_user(runtime, "colleague@example.com", "operator", name="Colleague")
    contact_id = new_contact(runtime)

    page = client.get(f"/contacts/{contact_id}")
    assert f'hx-get="/contacts/{contact_id}/work-forms"' in page.text
    forms = client.get(f"/contacts/{contact_id}/work-forms", headers=HX)
    assert forms.status_code == 200
    assert f'hx-post="/contacts/{contact_id}/tasks"' in forms.text
    assert f'hx-post="/contacts/{contact_id}/calls"' in forms.text
    assert f'<option value="{me}" selected>' in forms.text  # the operator by default

    answer = post(
        client,
        f"/contacts/{contact_id}/tasks",
        csrf,
        {
            "title": "Send the contract",
            "type": "meeting",
            "due_at": "2030-05-01T09:00",
            "assignee_id": str(colleague),
            "notes": "bring the stamp",
        },
    )
    assert answer.status_code == 200, answer.text
    assert "Task created." in answer.text
    # The card comes along out of band with the new task in its open tasks.
    oob = answer.text[answer.text.index('id="card-slot" hx-swap-oob="innerHTML"') :]
    assert "Send the contract" in oob

    [task] = tasks_of_contact(runtime.views, contact_id)
    assert (task.title, task.type, task.status) == ("Send the contract", "meeting", "open")
    assert task.notes == "bring the stamp"
    assert task.assignee_id == str(colleague)
    assert task.due_at is not None and task.due_at.startswith("2030-05-01T09:00")
    assert task.created_by == f"user:{me}"


def test_a_task_from_a_conversation_is_linked_to_it_and_to_its_client(runtime: Runtime) -> None:
    client, csrf, _me = web_client(runtime, "operator")
    conversation_id, contact_id = new_conversation(runtime)

    page = client.get(f"/inbox/{conversation_id}")
    assert f'hx-get="/inbox/{conversation_id}/work-forms"' in page.text
    forms = client.get(f"/inbox/{conversation_id}/work-forms", headers=HX)
    assert "linked to this conversation" in forms.text
    assert '<option value="email" selected>' in forms.text  # an e-mail is answered by e-mail

    answer = post(client, f"/inbox/{conversation_id}/tasks", csrf, {"title": "Prepare the prices"})
    assert answer.status_code == 200, answer.text
    assert 'id="client-card" hx-swap-oob="innerHTML"' in answer.text
    [task] = tasks_of_conversation(runtime.views, conversation_id)
    assert task.title == "Prepare the prices"
    assert task.contact_id == contact_id
    assert task.due_at is None


def test_a_refused_task_shows_the_message_by_its_field_and_keeps_what_was_typed(
    runtime: Runtime,
) -> None:
    client, csrf, _me = web_client(runtime, "operator")
    contact_id = new_contact(runtime)

    answer = post(client, f"/contacts/{contact_id}/tasks", csrf, {"title": " ", "notes": "keep me"})
    assert answer.status_code == 422
    assert error_for(answer.text, "title") == "must not be empty"
    assert "keep me</textarea>" in answer.text
    assert "hx-swap-oob" not in answer.text

    answer = post(
        client,
        f"/contacts/{contact_id}/tasks",
        csrf,
        {"title": "Call back", "due_at": "next tuesday"},
    )
    assert answer.status_code == 422
    assert "expected a date and time" in error_for(answer.text, "due_at")
    assert 'value="Call back"' in answer.text

    # Without scripts: the form comes back as a page of its own.
    page = post(client, f"/contacts/{contact_id}/tasks", csrf, {"title": ""}, htmx=False)
    assert page.status_code == 422
    assert "<html" in page.text and error_for(page.text, "title")
    assert tasks_of_contact(runtime.views, contact_id) == []


def test_a_logged_call_is_a_done_call_task_with_its_direction_outcome_and_duration(
    runtime: Runtime,
) -> None:
    client, csrf, me = web_client(runtime, "operator")
    contact_id = new_contact(runtime)

    answer = post(
        client,
        f"/contacts/{contact_id}/calls",
        csrf,
        {"direction": "inbound", "outcome": "answered", "duration": "4:05", "note": "wants 20"},
    )
    assert answer.status_code == 200, answer.text
    assert "The call is logged." in answer.text
    [call] = tasks_of_contact(runtime.views, contact_id)
    assert (call.type, call.status) == ("call", "done")
    assert call.title == "Incoming call, answered, 4:05"
    assert call.notes == "wants 20"
    assert call.assignee_id == str(me)
    # The client's timeline tells the call.
    kinds = [row["kind"] for row in runtime.queries.timeline(contact_id, 10)]
    assert "task.created" in kinds and "task.completed" in kinds

    # Without scripts: back to the client's page.
    done = post(
        client,
        f"/contacts/{contact_id}/calls",
        csrf,
        {"direction": "outbound", "outcome": "missed", "duration": "", "note": ""},
        htmx=False,
    )
    assert done.status_code == 303
    assert done.headers["location"].startswith(f"/contacts/{contact_id}")
    titles = sorted(t.title for t in tasks_of_contact(runtime.views, contact_id))
    assert titles == ["Incoming call, answered, 4:05", "Outgoing call, missed"]


def test_a_call_logged_in_the_inbox_is_linked_to_the_conversation(runtime: Runtime) -> None:
    client, csrf, _me = web_client(runtime, "operator")
    conversation_id, contact_id = new_conversation(runtime)
    answer = post(
        client,
        f"/inbox/{conversation_id}/calls",
        csrf,
        {"direction": "outbound", "outcome": "voicemail", "duration": "2"},
    )
    assert answer.status_code == 200, answer.text
    [call] = tasks_of_conversation(runtime.views, conversation_id)
    assert call.title == "Outgoing call, voicemail, 2:00"
    assert call.contact_id == contact_id


def test_a_refused_call_names_the_field(runtime: Runtime) -> None:
    client, csrf, _me = web_client(runtime, "operator")
    contact_id = new_contact(runtime)
    url = f"/contacts/{contact_id}/calls"
    bad_duration = post(
        client, url, csrf, {"direction": "outbound", "outcome": "answered", "duration": "a while"}
    )
    assert bad_duration.status_code == 422
    assert error_for(bad_duration.text, "duration")
    assert 'value="a while"' in bad_duration.text
    bad_outcome = post(client, url, csrf, {"direction": "outbound", "outcome": "ringing"})
    assert bad_outcome.status_code == 422
    assert error_for(bad_outcome.text, "outcome")
    assert tasks_of_contact(runtime.views, contact_id) == []


def test_a_new_client_gets_its_identities_company_and_responsible(runtime: Runtime) -> None:
    client, csrf, _me = web_client(runtime, "operator")
    manager = create_user(runtime, "manager@example.com", "manager", name="Maria Manager")
    company = runtime.app.create_company(actor="test", name="Romashka LLC")
    assert runtime.wait_for_views(company.notification_id, timeout=60)

    listing = client.get("/contacts")
    assert 'hx-get="/ui/contacts/new"' in listing.text
    form = client.get("/ui/contacts/new", headers=HX)
    assert 'hx-post="/contacts"' in form.text and "Maria Manager" in form.text

    answer = post(
        client,
        "/contacts",
        csrf,
        {
            "name": "Ivan Petrov",
            "email": "Ivan@Example.com",
            "phone": "+7 916 123-45-67",
            "company": "romashka llc",
            "responsible_id": str(manager),
        },
    )
    assert answer.status_code == 200, answer.text
    target = answer.headers["HX-Redirect"]
    contact_id = target.removeprefix("/contacts/")
    card = runtime.queries.contact(contact_id)
    assert card is not None
    assert card["display_name"] == "Ivan Petrov"
    assert {(i["kind"], i["value"]) for i in card["identities"]} == {
        ("email", "ivan@example.com"),
        ("phone", "+79161234567"),
    }
    assert str(card["responsible_id"]) == str(manager)
    assert str(card["company_id"]) == str(company.value)


def test_a_refused_new_client_says_why_by_the_field_and_creates_nothing(
    runtime: Runtime,
) -> None:
    client, csrf, _me = web_client(runtime, "operator")
    _, before = runtime.queries.contacts(ContactFilter(), 1, 0)

    bad_email = post(client, "/contacts", csrf, {"name": "Ivan", "email": "not-an-address"})
    assert bad_email.status_code == 422
    assert error_for(bad_email.text, "email")
    assert 'value="not-an-address"' in bad_email.text

    nobody = post(client, "/contacts", csrf, {"name": "", "email": ""})
    assert nobody.status_code == 422
    assert error_for(nobody.text, "name").startswith("a contact needs a name")

    no_company = post(client, "/contacts", csrf, {"name": "Ivan", "company": "Nowhere Ltd"})
    assert no_company.status_code == 422
    assert error_for(no_company.text, "company") == "No company has this name or ИНН."

    page = post(client, "/contacts", csrf, {"name": "", "email": ""}, htmx=False)
    assert page.status_code == 422 and "<html" in page.text

    _, after = runtime.queries.contacts(ContactFilter(), 1, 0)
    assert after == before


def test_the_forms_speak_russian(runtime: Runtime) -> None:
    client, csrf, _me = web_client(runtime, "operator", locale="ru")
    contact_id = new_contact(runtime)
    forms = client.get(f"/contacts/{contact_id}/work-forms", headers=HX)
    assert "Новая задача" in forms.text and "Записать звонок" in forms.text
    new_client = client.get("/ui/contacts/new", headers=HX)
    assert "Новый клиент" in new_client.text
    refused = post(client, f"/contacts/{contact_id}/tasks", csrf, {"title": ""})
    assert error_for(refused.text, "title") == "не может быть пустым"
    logged = post(
        client,
        f"/contacts/{contact_id}/calls",
        csrf,
        {"direction": "outbound", "outcome": "answered", "duration": "1:30"},
    )
    assert "Звонок записан." in logged.text
    [call] = tasks_of_contact(runtime.views, contact_id)
    assert call.title == "Исходящий звонок, принят, 1:30"


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/contacts/{contact}/tasks", {"title": "Sneaky"}),
        ("/contacts/{contact}/calls", {"direction": "outbound", "outcome": "answered"}),
        ("/contacts", {"name": "Sneaky"}),
    ],
)
def test_auditors_cannot_post_the_forms(runtime: Runtime, path: str, data: dict[str, str]) -> None:
    client, csrf, _me = web_client(runtime, "auditor")
    contact_id = new_contact(runtime)
    answer = post(client, path.format(contact=contact_id), csrf, data)
    assert answer.status_code == 403
    assert tasks_of_contact(runtime.views, contact_id) == []
    _, total = runtime.queries.contacts(ContactFilter(), 10, 0)
    assert total == 1
    page = client.get(f"/contacts/{contact_id}")
    assert "/work-forms" not in page.text
