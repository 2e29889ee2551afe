"""The client card's "Consents" section, its forms, the timeline entries, the form editor.

Every role reads where a client stands on each consent policy (agreed to the text in
force, to an older one, withdrawn, not given); writers record a consent obtained in
writing and a withdrawal; auditors see no forms and are refused (403). The web form
editor asks for consents per purpose and refuses one without a published policy.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from tests.conftest import make_runtime
from tests.web.helpers import web_client
from threadline.projections.consents import consents_of
from threadline.projections.forms import forms
from threadline.services.runtime import Runtime
from threadline.services.web import routes_auth
from threadline.services.web.login_limit import LoginLimiter

HX = {"HX-Request": "true"}
PERSONAL = "personal-data"
MARKETING = "marketing"
NEWSLETTER = "newsletter"
PROFILING = "profiling"


@pytest.fixture
def runtime(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(database_url, attachments_dir=str(tmp_path / "attachments"))
    routes_auth.limiter = LoginLimiter()
    try:
        yield rt
    finally:
        rt.close()


def publish(runtime: Runtime, purpose: str, title: str, text: str) -> None:
    committed = runtime.app.publish_consent_policy(purpose, title, text, False, "test")
    runtime.wait_for_views(committed.notification_id, timeout=60)


def settle(runtime: Runtime) -> None:
    runtime.wait_for_views(runtime.app.recorder.max_notification_id(), timeout=60)


def new_client(runtime: Runtime, name: str = "Olga Smirnova") -> UUID:
    committed = runtime.app.create_contact(
        actor="test", name=name, identities=[("email", "olga@example.com")]
    )
    contact: UUID = committed.value
    runtime.wait_for_views(committed.notification_id, timeout=60)
    return contact


def client_in_every_state(runtime: Runtime) -> UUID:
    """Agreed (personal-data), agreed to an older text (marketing), withdrawn (newsletter),
    never asked (profiling)."""
    publish(runtime, PERSONAL, "Processing of personal data", "Text v1")
    publish(runtime, MARKETING, "Marketing messages", "Offers v1")
    publish(runtime, NEWSLETTER, "The newsletter", "News v1")
    publish(runtime, PROFILING, "Profiling", "Profiling v1")
    contact = new_client(runtime)
    for purpose in (PERSONAL, MARKETING, NEWSLETTER):
        runtime.app.give_consent(contact, purpose, "form:contact", "test")
    runtime.app.withdraw_consent(contact, NEWSLETTER, "operator", "by phone", "test")
    publish(runtime, MARKETING, "Marketing messages", "Offers v2")
    settle(runtime)
    return contact


def section(page: str) -> str:
    found = re.search(r'<section class="cc-section cc-consents".*?</section>', page, re.S)
    assert found, page
    return found.group(0)


def items(page: str) -> dict[str, str]:
    """The text of each purpose's entry in the consents section."""
    found = re.findall(
        r'<li class="consent[^"]*" data-purpose="([^"]+)"(.*?)</li>', section(page), re.S
    )
    return {purpose: text_of(f"<x{entry}") for purpose, entry in found}


def text_of(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def test_the_card_shows_each_policy_with_the_clients_status(runtime: Runtime) -> None:
    client, _, _ = web_client(runtime, "operator", "en")
    contact = client_in_every_state(runtime)
    for page in (
        client.get(f"/contacts/{contact}/card").text,
        client.get(f"/contacts/{contact}").text,
    ):
        shown = items(page)
        assert list(shown) == [MARKETING, NEWSLETTER, PERSONAL, PROFILING]
        assert re.search(r"Processing of personal data Agreed on .+ to version 1 · form contact",
                         shown[PERSONAL]), shown[PERSONAL]  # fmt: skip
        assert "Agreed to an older version 1 of 2: ask again" in shown[MARKETING]
        assert re.search(r"Withdrawn on \S", shown[NEWSLETTER]), shown[NEWSLETTER]
        assert "recorded by an operator" in shown[NEWSLETTER]
        assert "Not given" in shown[PROFILING]
        # what a writer may record in each state
        assert "Record consent given in writing" not in shown[PERSONAL]
        assert "Record withdrawal" in shown[PERSONAL] and "Record withdrawal" in shown[MARKETING]
        assert "Record consent given in writing" in shown[MARKETING]
        assert "Record withdrawal" not in shown[NEWSLETTER] + shown[PROFILING]
        assert 'name="csrf_token"' in section(page)


def test_an_operator_records_a_consent_and_a_withdrawal(runtime: Runtime) -> None:
    client, csrf, _ = web_client(runtime, "operator", "en")
    publish(runtime, PERSONAL, "Processing of personal data", "Text v1")
    contact = new_client(runtime)
    assert "Not given" in items(client.get(f"/contacts/{contact}/card").text)[PERSONAL]

    given = client.post(
        f"/contacts/{contact}/consents/{PERSONAL}/give", data={"csrf_token": csrf}, headers=HX
    )
    assert given.status_code == 200, given.text
    assert re.search(
        r"Agreed on .+ to version 1 · recorded by an operator", items(given.text)[PERSONAL]
    )
    [row] = consents_of(runtime.views, contact)
    assert (row.status, row.via, row.text_version) == ("current", "operator", 1)

    withdrawn = client.post(
        f"/contacts/{contact}/consents/{PERSONAL}/withdraw",
        data={"csrf_token": csrf, "reason": "Asked by e-mail"},
        follow_redirects=False,
    )  # a plain form post: back to the page
    assert withdrawn.status_code == 303
    assert withdrawn.headers["location"] == f"/contacts/{contact}?done=saved"
    assert "Withdrawn on" in items(client.get(f"/contacts/{contact}").text)[PERSONAL]
    [row] = consents_of(runtime.views, contact)
    assert row.status == "withdrawn" and row.withdrawn_at

    again = client.post(
        f"/contacts/{contact}/consents/{PERSONAL}/withdraw", data={"csrf_token": csrf}, headers=HX
    )
    assert again.status_code == 422
    assert "there is nothing to withdraw" in text_of(section(again.text))
    unknown = client.post(
        f"/contacts/{contact}/consents/nope/give", data={"csrf_token": csrf}, headers=HX
    )
    assert unknown.status_code == 404 and "nope" in text_of(section(unknown.text))
    assert client.post(f"/contacts/{contact}/consents/{PERSONAL}/give", data={}).status_code == 403

    timeline = client.get(f"/contacts/{contact}/timeline").text
    entries = re.findall(
        r'<li class="tl-row" data-kind="(consent\.[a-z]+)".*?</li>', timeline, re.S
    )
    assert entries == ["consent.withdrawn", "consent.given"]
    assert "Consent given" in timeline and "Consent withdrawn" in timeline


def test_an_auditor_sees_the_statuses_but_no_forms(runtime: Runtime) -> None:
    client, csrf, _ = web_client(runtime, "auditor", "en")
    contact = client_in_every_state(runtime)
    block = section(client.get(f"/contacts/{contact}").text)
    assert "Agreed to an older version 1 of 2" in text_of(block)
    assert "<form" not in block
    for action in (f"{PROFILING}/give", f"{PERSONAL}/withdraw"):
        refused = client.post(
            f"/contacts/{contact}/consents/{action}",
            data={"csrf_token": csrf, "reason": "x"},
            headers=HX,
        )
        assert refused.status_code == 403
    statuses = {r.purpose: r.status for r in consents_of(runtime.views, contact)}
    assert statuses[PROFILING] == "none" and statuses[PERSONAL] == "current"


def test_russian(runtime: Runtime) -> None:
    client, csrf, _ = web_client(runtime, "operator", "ru")
    contact = client_in_every_state(runtime)
    page = client.get(f"/contacts/{contact}").text
    shown = items(page)
    assert "Согласия" in text_of(section(page))
    assert "Согласие на прежнюю версию 1 из 2: запросите снова" in shown[MARKETING]
    assert re.search(r"Согласие дано .+ на версию 1 · форма contact", shown[PERSONAL])
    assert "Отозвано" in shown[NEWSLETTER] and "записано оператором" in shown[NEWSLETTER]
    assert "Не дано" in shown[PROFILING]  # noqa: RUF001
    assert "Записать письменное согласие" in shown[PROFILING]
    assert "Записать отзыв согласия" in shown[PERSONAL]
    done = client.post(
        f"/contacts/{contact}/consents/{PROFILING}/give", data={"csrf_token": csrf}, headers=HX
    )
    assert done.status_code == 200 and "Согласие дано" in items(done.text)[PROFILING]
    timeline = client.get(f"/contacts/{contact}/timeline").text
    assert "Дано согласие" in timeline and "Согласие отозвано" in timeline


# -- the web form editor ------------------------------------------------------------------------


def editor_form(csrf: str, consents: list[dict[str, str]]) -> dict[str, str]:
    data = {"csrf_token": csrf, "slug": "lead", "name": "Leave a request", "rows": "1",
            "f0_name": "email", "f0_label": "E-mail", "f0_type": "email", "f0_maps": "email",
            "rate_limit_per_minute": "10", "enabled": "1", "consent_rows": str(len(consents))}  # fmt: skip
    for index, row in enumerate(consents):
        for key, value in row.items():
            data[f"c{index}_{key}"] = value
    return data


def test_the_form_editor_asks_for_consents_of_published_policies(runtime: Runtime) -> None:
    client, csrf, _ = web_client(runtime, "manager", "en")
    publish(runtime, PERSONAL, "Processing of personal data", "Text v1")
    new = client.get("/admin/forms/new").text
    assert "Consents" in new and f'<option value="{PERSONAL}">' in new

    blank = {"purpose": ""}
    refused = client.post(
        "/admin/forms/new",
        data=editor_form(csrf, [blank, {"purpose": PERSONAL}, {"purpose": MARKETING}]),
    )
    assert refused.status_code == 422
    errors = dict(re.findall(r'data-error-for="([^"]+)">([^<]*)<', refused.text))
    assert errors["c2_purpose"].startswith("consents.1.purpose: no consent policy")
    assert forms(runtime.views) == []

    saved = client.post(
        "/admin/forms/new",
        data=editor_form(csrf, [{"purpose": PERSONAL, "required": "1"}, blank]),
        follow_redirects=False,
    )
    assert saved.status_code == 303, saved.text
    [form] = forms(runtime.views)
    assert form.definition["consents"] == [{"purpose": PERSONAL, "required": True}]
    editor = client.get("/admin/forms/lead").text
    assert f'name="c0_purpose" value="{PERSONAL}"' in editor
    assert re.search(r'name="c0_required" value="1" checked', editor)
    ru, _, _ = web_client(runtime, "admin", "ru")
    assert "Цель обработки" in ru.get("/admin/forms/lead").text
