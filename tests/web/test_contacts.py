"""The clients screens: the list, the card beside a conversation, the full page, merging.

Each typed attribute is edited in place the way the browser does it (the editor
fragment, then an HTMX post) and must be stored as its type; a wrong value must
come back inline with the attribute registry's own message and change nothing.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_runtime
from tests.web.helpers import web_client
from threadline.domain.model.attributes import AttributeDefinition, AttributeType
from threadline.services.runtime import Runtime
from threadline.services.web import routes_contacts

HX = {"HX-Request": "true"}
ATTRIBUTES = (
    AttributeDefinition("position", "Position", AttributeType.TEXT),
    AttributeDefinition("staff_size", "Staff size", AttributeType.NUMBER),
    AttributeDefinition("birthday", "Birthday", AttributeType.DATE, personal=True),
    AttributeDefinition("plan", "Plan", AttributeType.CHOICE, options=("basic", "pro")),
    AttributeDefinition(
        "products", "Products", AttributeType.MULTI_CHOICE, options=("chat", "crm", "telephony")
    ),
    AttributeDefinition("vip", "VIP", AttributeType.BOOLEAN),
)


@pytest.fixture
def runtime(sqlite_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(sqlite_url, attachments_dir=str(tmp_path / "attachments"))
    for definition in ATTRIBUTES:
        rt.app.define_attribute(definition, "test")
    try:
        yield rt
    finally:
        rt.close()


def settle(runtime: Runtime) -> None:
    runtime.wait_for_views(runtime.app.recorder.max_notification_id())


def new_contact(runtime: Runtime, name: str = "Olga Smirnova", **kwargs: Any) -> str:
    kwargs.setdefault("identities", [("email", f"{name.split()[0].lower()}@example.com")])
    committed = runtime.app.create_contact(actor="test", name=name, **kwargs)
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    return str(committed.value)


def card_of(runtime: Runtime, contact_id: str) -> dict[str, Any]:
    card = runtime.queries.contact(contact_id)
    assert card is not None
    return card


def olga(runtime: Runtime) -> str:
    return new_contact(
        runtime,
        identities=[("email", "olga@example.com"), ("phone", "+7 912 345-67-89")],
        tags=["webinar"],
        source={"channel": "telegram", "utm_source": "google", "acquisition_cost": 1500},
        attributes={"staff_size": 40, "plan": "basic"},
    )


@pytest.mark.parametrize("locale", ["en", "ru"])
@pytest.mark.parametrize("role", ["operator", "auditor"])
def test_card_and_page_render_for_each_role_and_language(
    runtime: Runtime, role: str, locale: str
) -> None:
    contact_id = olga(runtime)
    runtime.app.create_task(
        actor="test", title="Call back about pricing", contact_id=UUID(contact_id)
    )
    settle(runtime)
    client, _, _ = web_client(runtime, role, locale)
    card = client.get(f"/contacts/{contact_id}/card")
    page = client.get(f"/contacts/{contact_id}")
    for answer in (card, page):
        assert answer.status_code == 200, answer.text
        text = answer.text
        assert "Olga Smirnova" in text
        assert "olga@example.com" in text and "+79123456789" in text
        assert "google" in text and "telegram" in text and "1" in text
        assert "webinar" in text and "Call back about pricing" in text
        assert 'id="deals"' in text
        for definition in ATTRIBUTES:
            assert definition.label in text
        editable = f"/contacts/{contact_id}/attributes/plan/edit" in text
        assert editable is (role == "operator")
        # Every form of the card is disabled for an auditor, none for an operator.
        disabled = len(re.findall(r"<(?:button|select|input)[^>]*\sdisabled", text))
        assert (disabled > 0) is (role == "auditor")
        if locale == "ru":
            assert "Теги" in text and "Источник" in text and "Сделок пока нет" in text
            assert "1\xa0500,00\xa0₽" in text  # the acquisition cost as money, in Russian
        else:
            assert "Tags" in text and "No deals yet." in text and "1,500.00" in text
    assert "<html" not in card.text  # a fragment, not a page
    recent = client.get(f"/contacts/{contact_id}/recent")
    assert recent.status_code == 200 and 'data-kind="contact.created"' in recent.text
    assert (
        'data-kind="task.created"' in recent.text
        and f'data-live="contact:{contact_id}"' in recent.text
    )
    assert "Possible duplicates" in page.text or "Возможные дубли" in page.text


def edit(client: TestClient, csrf: str, contact_id: str, key: str, *values: str) -> Any:
    data: dict[str, Any] = {"key": key, "value": list(values), "csrf_token": csrf}
    return client.post(f"/contacts/{contact_id}/attributes", data=data, headers=HX)


@pytest.mark.parametrize(
    ("key", "widget", "posted", "stored"),
    [
        ("position", 'type="text"', ["CTO"], "CTO"),
        ("staff_size", 'type="number"', ["120"], 120),
        ("birthday", 'type="date"', ["1990-03-01"], "1990-03-01"),
        ("plan", "<select", ["pro"], "pro"),
        ("products", "multiple", ["crm", "chat"], ["chat", "crm"]),
        ("vip", 'type="checkbox"', ["false", "true"], True),
    ],
)
def test_each_attribute_type_is_edited_in_place_and_stored_typed(
    runtime: Runtime, key: str, widget: str, posted: list[str], stored: Any
) -> None:
    contact_id = olga(runtime)
    client, csrf, _ = web_client(runtime)
    editor = client.get(f"/contacts/{contact_id}/attributes/{key}/edit", headers=HX)
    assert editor.status_code == 200
    assert widget in editor.text and 'class="attr attr-editor"' in editor.text
    saved = edit(client, csrf, contact_id, key, *posted)
    assert saved.status_code == 200, saved.text
    assert "attr-editor" not in saved.text  # back to the value, in place
    value = card_of(runtime, contact_id)["attributes"][key]
    assert value == stored and type(value) is type(stored)
    cancel = client.get(f"/contacts/{contact_id}/attributes/{key}", headers=HX)
    assert cancel.status_code == 200 and "attr-editor" not in cancel.text


def test_unticking_a_boolean_and_emptying_a_field(runtime: Runtime) -> None:
    contact_id = olga(runtime)
    client, csrf, _ = web_client(runtime)
    assert edit(client, csrf, contact_id, "vip", "false", "true").status_code == 200
    assert edit(client, csrf, contact_id, "vip", "false").status_code == 200
    assert card_of(runtime, contact_id)["attributes"]["vip"] is False
    assert edit(client, csrf, contact_id, "plan", "").status_code == 200
    assert "plan" not in card_of(runtime, contact_id)["attributes"]


@pytest.mark.parametrize(
    ("key", "wrong", "message"),
    [
        ("staff_size", "lots", "expected a number, got 'lots'"),
        ("birthday", "1990-13-45", "expected a date YYYY-MM-DD, got '1990-13-45'"),
        ("plan", "gold", "'gold' is not one of ['basic', 'pro']"),
        ("products", "fax", "['fax'] not among ['chat', 'crm', 'telephony']"),
        ("vip", "maybe", "expected true or false, got 'maybe'"),
    ],
)
def test_a_wrong_value_shows_the_registry_message_inline_and_saves_nothing(
    runtime: Runtime, key: str, wrong: str, message: str
) -> None:
    contact_id = olga(runtime)
    before = card_of(runtime, contact_id)["attributes"]
    client, csrf, _ = web_client(runtime)
    answer = edit(client, csrf, contact_id, key, wrong)
    assert answer.status_code == 422
    assert "attr-editor" in answer.text  # the editor stays open, with the message
    errors = re.findall(r'data-error-for="attributes\.(\w+)">([^<]*)<', answer.text)
    assert [(k, html.unescape(m)) for k, m in errors] == [(key, message)]
    assert card_of(runtime, contact_id)["attributes"] == before


def test_without_htmx_a_wrong_value_renders_the_page_with_the_message(runtime: Runtime) -> None:
    contact_id = olga(runtime)
    client, csrf, _ = web_client(runtime)
    answer = client.post(
        f"/contacts/{contact_id}/attributes",
        data={"key": "staff_size", "value": "fifty", "csrf_token": csrf},
    )
    assert answer.status_code == 422
    assert "<html" in answer.text and "expected a number, got &#39;fifty&#39;" in answer.text
    good = client.post(
        f"/contacts/{contact_id}/attributes",
        data={"key": "staff_size", "value": "50", "csrf_token": csrf},
        follow_redirects=False,
    )
    assert good.status_code == 303
    assert good.headers["location"] == f"/contacts/{contact_id}?done=saved"
    assert card_of(runtime, contact_id)["attributes"]["staff_size"] == 50
    unknown = client.post(
        f"/contacts/{contact_id}/attributes",
        data={"key": "shoe_size", "value": "44", "csrf_token": csrf},
    )
    assert unknown.status_code == 404


def test_tags_are_added_and_removed(runtime: Runtime) -> None:
    contact_id = olga(runtime)
    client, csrf, _ = web_client(runtime)
    url = f"/contacts/{contact_id}/tags"
    added = client.post(url, data={"add": "Hot Lead, spring", "csrf_token": csrf}, headers=HX)
    assert added.status_code == 200
    assert 'id="contact-card"' in added.text and "hot lead" in added.text
    assert card_of(runtime, contact_id)["tags"] == ["hot lead", "spring", "webinar"]
    removed = client.post(url, data={"remove": "webinar", "csrf_token": csrf}, headers=HX)
    assert removed.status_code == 200 and 'name="remove" value="webinar"' not in removed.text
    assert 'name="remove" value="spring"' in removed.text
    assert card_of(runtime, contact_id)["tags"] == ["hot lead", "spring"]
    too_long = client.post(url, data={"add": "x" * 80, "csrf_token": csrf}, headers=HX)
    assert too_long.status_code == 422 and "a tag has 1 to 64 characters" in too_long.text
    plain = client.post(url, data={"add": "later", "csrf_token": csrf}, follow_redirects=False)
    assert plain.status_code == 303
    assert "later" in card_of(runtime, contact_id)["tags"]


def test_stage_and_responsible_change_from_the_card(runtime: Runtime) -> None:
    contact_id = olga(runtime)
    client, csrf, me = web_client(runtime)
    stage = client.post(
        f"/contacts/{contact_id}/lifecycle",
        data={"lifecycle": "customer", "csrf_token": csrf},
        headers=HX,
    )
    assert stage.status_code == 200
    assert card_of(runtime, contact_id)["lifecycle"] == "customer"
    wrong = client.post(
        f"/contacts/{contact_id}/lifecycle", data={"lifecycle": "vip", "csrf_token": csrf}
    )
    assert wrong.status_code == 422 and 'data-error-for="lifecycle"' in wrong.text
    owner = client.post(
        f"/contacts/{contact_id}/responsible",
        data={"responsible_id": str(me), "csrf_token": csrf},
        headers=HX,
    )
    assert owner.status_code == 200 and f'value="{me}" selected' in owner.text
    assert card_of(runtime, contact_id)["responsible_id"] == str(me)
    nobody = client.post(
        f"/contacts/{contact_id}/responsible",
        data={"responsible_id": "", "csrf_token": csrf},
        headers=HX,
    )
    assert nobody.status_code == 200
    assert card_of(runtime, contact_id)["responsible_id"] is None
    stranger = client.post(
        f"/contacts/{contact_id}/responsible",
        data={"responsible_id": "00000000-0000-4000-8000-000000000000", "csrf_token": csrf},
        headers=HX,
    )
    assert stranger.status_code == 404 and 'data-error-for="responsible"' in stranger.text


def test_merge_from_the_card_folds_the_duplicate(runtime: Runtime) -> None:
    keeper = olga(runtime)
    duplicate = new_contact(
        runtime, "Smirnova Olga", identities=[("email", "olga.s@example.org")], tags=["import"]
    )
    client, csrf, _ = web_client(runtime)
    page = client.get(f"/contacts/{keeper}")
    assert "Possible duplicates" in page.text
    merge_link = f"/contacts/{keeper}/merge?other_id={duplicate}"
    assert merge_link in page.text
    confirm = client.get(merge_link)
    assert confirm.status_code == 200 and "cannot be undone" in confirm.text
    assert f'name="other_id" value="{duplicate}"' in confirm.text
    merged = client.post(
        f"/contacts/{keeper}/merge",
        data={"other_id": duplicate, "csrf_token": csrf},
        follow_redirects=False,
    )
    assert merged.status_code == 303
    assert merged.headers["location"] == f"/contacts/{keeper}?done=merged"
    after = client.get(merged.headers["location"])
    assert "The duplicate was merged into this client." in after.text
    assert "olga.s@example.org" in after.text  # the duplicate's identity moved over
    assert "import" in card_of(runtime, keeper)["tags"]
    listing = client.get("/contacts")
    assert keeper in listing.text and duplicate not in listing.text
    # The duplicate's address leads to the client it was folded into.
    old = client.get(f"/contacts/{duplicate}", follow_redirects=False)
    assert old.status_code == 303 and old.headers["location"] == f"/contacts/{keeper}"
    beside = client.get(f"/contacts/{duplicate}/card")  # an inbox still holding the old id
    assert beside.status_code == 200 and f'data-contact-id="{keeper}"' in beside.text
    again = client.post(
        f"/contacts/{keeper}/merge", data={"other_id": duplicate, "csrf_token": csrf}
    )
    assert again.status_code == 409 and "already merged" in again.text
    itself = client.post(f"/contacts/{keeper}/merge", data={"other_id": keeper, "csrf_token": csrf})
    assert itself.status_code == 422


def test_timeline_pages_back_with_before(runtime: Runtime, monkeypatch: Any) -> None:
    monkeypatch.setattr(routes_contacts, "TIMELINE_PAGE", 5)
    contact_id = new_contact(runtime)
    for number in range(12):
        runtime.app.update_contact(UUID(contact_id), actor="test", add_tags=[f"step-{number:02}"])
    settle(runtime)  # 13 rows: created + 12 tag changes
    client, _, _ = web_client(runtime, "auditor")
    seen: list[str] = []
    url: str | None = f"/contacts/{contact_id}/timeline"
    pages = 0
    while url and pages < 5:
        answer = client.get(url)
        assert answer.status_code == 200
        seqs = [int(s) for s in re.findall(r'data-seq="(\d+)"', answer.text)]
        assert seqs == sorted(seqs, reverse=True)  # newest first
        seen += re.findall(r"step-\d\d", answer.text)
        older = re.search(r'href="(/contacts/[^"]+/timeline\?before=\d+)"', answer.text)
        url = older.group(1) if older else None
        pages += 1
    assert pages == 3
    assert client.get(f"/contacts/{contact_id}/timeline?before=soon").status_code == 200
    assert seen == [f"step-{n:02}" for n in reversed(range(12))]


def test_the_list_filters_searches_and_pages(runtime: Runtime, monkeypatch: Any) -> None:
    monkeypatch.setattr(routes_contacts, "PAGE_SIZE", 2)
    big = new_contact(runtime, "Big Corp Buyer", attributes={"staff_size": 500}, tags=["hot"])
    small = new_contact(runtime, "Small Shop", attributes={"staff_size": 5}, lifecycle="customer")
    third = new_contact(runtime, "Third Person")
    client, _, _ = web_client(runtime, "operator", "ru")
    everyone = client.get("/contacts")
    assert everyone.status_code == 200 and "Клиенты" in everyone.text
    assert "page=2" in everyone.text and third in everyone.text and big not in everyone.text
    second = client.get("/contacts?page=2")
    assert big in second.text
    found = client.get("/contacts", params={"q": "shop"})
    assert small in found.text and big not in found.text
    staged = client.get("/contacts", params={"lifecycle": "customer"})
    assert small in staged.text and big not in staged.text
    tagged = client.get("/contacts", params={"tag": "hot"})
    assert big in tagged.text and small not in tagged.text
    built = client.get("/contacts", params={"fk": "staff_size", "fop": "gte", "fv": "50"})
    assert big in built.text and small not in built.text
    assert "attr.staff_size.gte = 50" in built.text  # shown as a removable filter
    direct = client.get("/contacts", params={"attr.staff_size.lt": "50"})
    assert small in direct.text and big not in direct.text
    wrong = client.get("/contacts", params={"attr.staff_size.gte": "many"})
    assert wrong.status_code == 422 and 'role="alert"' in wrong.text


def test_auditor_posts_are_refused_and_change_nothing(runtime: Runtime) -> None:
    contact_id = olga(runtime)
    other = new_contact(runtime, "Olga Smirnova", identities=[("email", "o.s@example.net")])
    before = card_of(runtime, contact_id)
    client, csrf, _ = web_client(runtime, "auditor")
    posts = [
        ("attributes", {"key": "plan", "value": "pro"}),
        ("tags", {"add": "audited"}),
        ("lifecycle", {"lifecycle": "churned"}),
        ("responsible", {"responsible_id": ""}),
        ("merge", {"other_id": other}),
    ]
    for action, data in posts:
        answer = client.post(f"/contacts/{contact_id}/{action}", data={**data, "csrf_token": csrf})
        assert answer.status_code == 403, action
    assert client.get(f"/contacts/{contact_id}/attributes/plan/edit").status_code == 403
    after = card_of(runtime, contact_id)
    assert after == before and card_of(runtime, other)["merged_into"] is None


def test_a_post_without_the_csrf_token_is_refused(runtime: Runtime) -> None:
    contact_id = olga(runtime)
    client, _, _ = web_client(runtime)
    for action, data in (("tags", {"add": "x"}), ("attributes", {"key": "plan", "value": "pro"})):
        assert client.post(f"/contacts/{contact_id}/{action}", data=data).status_code == 403
    assert card_of(runtime, contact_id)["tags"] == ["webinar"]


def test_unknown_clients_are_404(runtime: Runtime) -> None:
    client, _, _ = web_client(runtime)
    missing = "00000000-0000-4000-8000-000000000000"
    assert client.get(f"/contacts/{missing}").status_code == 404
    assert client.get(f"/contacts/{missing}/card").status_code == 404
    assert client.get("/contacts/not-a-uuid/timeline").status_code == 404
