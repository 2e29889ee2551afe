"""Forgetting a client from the web app (GDPR art. 17, 152-FZ): admins only, after a ticked box.

Anna writes by e-mail; an admin opens her page, follows "Forget this client", reads what
happens and confirms. Afterwards her page says she was forgotten and shows neither her name
nor her address, and her conversation no longer shows what she wrote. Other roles get 403;
a form without the ticked box changes nothing.
"""

# ruff: noqa: RUF001 (the Russian page's texts on purpose)

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from tests.conftest import make_runtime
from tests.web.helpers import web_client
from threadline.domain.model.inbound import InboundMessage
from threadline.projections.base import FORGOTTEN_NAME
from threadline.services.runtime import Runtime

NAME = "Anna Karenina"
EMAIL = "anna.k@example.org"
SECRET = "my secret text"
BANNER = (
    "This client was forgotten at their request; what they said and who they are can no longer "
    "be read."
)


@pytest.fixture
def runtime(sqlite_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(sqlite_url, attachments_dir=str(tmp_path / "attachments"))
    try:
        yield rt
    finally:
        rt.close()


def anna_writes(runtime: Runtime) -> Any:
    """Anna's e-mail; the ingest result (contact and conversation ids), the views caught up."""
    committed = runtime.app.ingest(
        InboundMessage.create(
            channel="email",
            dedup_key="<m1@x>",
            identities=[("email", EMAIL)],
            sender_name=NAME,
            subject="Hello",
            text=SECRET,
        )
    )
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    return committed.value


def settle(runtime: Runtime) -> None:
    assert runtime.wait_for_views(runtime.app.recorder.max_notification_id(), timeout=60)


def name_of(runtime: Runtime, contact_id: str) -> str:
    card = runtime.queries.contact(contact_id)
    assert card is not None
    return str(card["display_name"])


def forget_link(contact_id: str) -> str:
    return f'href="/contacts/{contact_id}/forget"'


def test_an_admin_sees_the_link_and_the_confirmation_page(runtime: Runtime) -> None:
    contact = str(anna_writes(runtime).contact_id)
    client, csrf, _ = web_client(runtime, "admin")

    page = client.get(f"/contacts/{contact}")
    assert page.status_code == 200, page.text
    assert forget_link(contact) in page.text
    assert "Forget this client" in page.text
    assert BANNER not in page.text

    confirm = client.get(f"/contacts/{contact}/forget")
    assert confirm.status_code == 200, confirm.text
    text = confirm.text
    assert "becomes unreadable for good, in every view, export and replay." in text
    assert "Contacts merged into this one are forgotten with it." in text
    assert "This cannot be undone." in text
    assert NAME in text and EMAIL in text
    form = re.search(
        r'<form method="post" action="/contacts/([^"]+)/forget">(.*?)</form>', text, re.S
    )
    assert form is not None and form.group(1) == contact, text
    assert f'name="csrf_token" value="{csrf}"' in form.group(2)
    checkbox = re.search(r'<input type="checkbox" name="confirm"[^>]*>', form.group(2))
    assert checkbox is not None, form.group(2)
    assert "required" in checkbox.group(0) and "checked" not in checkbox.group(0)
    assert '<button type="submit" class="danger">' in form.group(2)
    assert f'href="/contacts/{contact}">Cancel</a>' in form.group(2)


@pytest.mark.parametrize("role", ["operator", "manager", "auditor"])
def test_no_one_but_an_admin_may_forget(runtime: Runtime, role: str) -> None:
    contact = str(anna_writes(runtime).contact_id)
    client, csrf, _ = web_client(runtime, role)

    page = client.get(f"/contacts/{contact}")
    assert page.status_code == 200, page.text
    assert forget_link(contact) not in page.text and "Forget this client" not in page.text

    assert client.get(f"/contacts/{contact}/forget").status_code == 403
    refused = client.post(
        f"/contacts/{contact}/forget",
        data={"csrf_token": csrf, "confirm": "yes"},
        follow_redirects=False,
    )
    assert refused.status_code == 403, refused.text
    settle(runtime)
    assert name_of(runtime, contact) == NAME


def test_without_the_ticked_box_nothing_is_forgotten(runtime: Runtime) -> None:
    contact = str(anna_writes(runtime).contact_id)
    client, csrf, _ = web_client(runtime, "admin")

    for data in ({"csrf_token": csrf}, {"csrf_token": csrf, "confirm": ""}):
        answer = client.post(f"/contacts/{contact}/forget", data=data, follow_redirects=False)
        assert answer.status_code == 422, answer.text
        assert "Tick the box to confirm that this client is to be forgotten." in answer.text
        assert NAME in answer.text  # the same confirmation page again

    settle(runtime)
    assert name_of(runtime, contact) == NAME
    page = client.get(f"/contacts/{contact}")
    assert NAME in page.text and EMAIL in page.text and BANNER not in page.text


def test_a_forgotten_client_can_no_longer_be_read(runtime: Runtime) -> None:
    wrote = anna_writes(runtime)
    contact = str(wrote.contact_id)
    client, csrf, _ = web_client(runtime, "admin")
    assert SECRET in client.get(f"/inbox/{wrote.conversation_id}").text  # before: readable

    done = client.post(
        f"/contacts/{contact}/forget",
        data={"csrf_token": csrf, "confirm": "yes"},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"/contacts/{contact}?done=forgotten"
    settle(runtime)
    assert name_of(runtime, contact) == FORGOTTEN_NAME

    page = client.get(done.headers["location"])
    assert page.status_code == 200, page.text
    assert BANNER in page.text
    assert "The client was forgotten: who they are and what they said can no longer be read." in (
        page.text
    )
    assert "<title>Forgotten contact · Threadline</title>" in page.text
    assert NAME not in page.text and EMAIL not in page.text
    assert forget_link(contact) not in page.text

    card = client.get(f"/contacts/{contact}/card")
    assert card.status_code == 200 and "Forgotten contact" in card.text
    assert NAME not in card.text and EMAIL not in card.text

    conversation = client.get(f"/inbox/{wrote.conversation_id}")
    assert conversation.status_code == 200, conversation.text
    assert SECRET not in conversation.text and NAME not in conversation.text
    thread = client.get(f"/inbox/{wrote.conversation_id}/thread")
    assert thread.status_code == 200 and SECRET not in thread.text


def test_an_unknown_client_is_not_found(runtime: Runtime) -> None:
    client, csrf, _ = web_client(runtime, "admin")
    unknown = uuid4()
    assert client.get(f"/contacts/{unknown}/forget").status_code == 404
    assert client.get("/contacts/not-an-id/forget").status_code == 404
    answer = client.post(
        f"/contacts/{unknown}/forget",
        data={"csrf_token": csrf, "confirm": "yes"},
        follow_redirects=False,
    )
    assert answer.status_code == 404, answer.text


def test_in_russian(runtime: Runtime) -> None:
    contact = str(anna_writes(runtime).contact_id)
    client, csrf, _ = web_client(runtime, "admin", locale="ru")

    assert "Забыть этого клиента" in client.get(f"/contacts/{contact}").text
    confirm = client.get(f"/contacts/{contact}/forget")
    assert confirm.status_code == 200, confirm.text
    assert "станет нечитаемым навсегда" in confirm.text
    assert "Контакты, объединённые с этим клиентом, будут забыты вместе с ним." in confirm.text
    assert "Это нельзя отменить." in confirm.text
    assert "becomes unreadable for good" not in confirm.text

    refused = client.post(f"/contacts/{contact}/forget", data={"csrf_token": csrf})
    assert refused.status_code == 422
    assert "Отметьте флажок, чтобы подтвердить, что клиента нужно забыть." in refused.text

    done = client.post(
        f"/contacts/{contact}/forget",
        data={"csrf_token": csrf, "confirm": "yes"},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    settle(runtime)
    page = client.get(done.headers["location"]).text
    assert "Этот клиент забыт по его просьбе" in page
    assert "Клиент забыт: кто он и что он писал, больше прочитать нельзя." in page
    assert "<title>Забытый клиент · Threadline</title>" in page
    assert FORGOTTEN_NAME not in page and NAME not in page
