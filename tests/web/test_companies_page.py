"""The companies screens: the list with search and paging, the company page, its edit form.

The edit form posts to the same command as the API; a wrong check digit must come back next
to its field (in the user's language) with 422 and change nothing.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import make_runtime
from tests.web.helpers import web_client
from threadline.projections.companies import company
from threadline.services.runtime import Runtime
from threadline.services.web import routes_companies

SBER = {
    "label": "Head office",
    "inn": "7707083893",
    "kpp": "773601001",
    "ogrn": "1027700132195",
    "legal_address": "Moscow, Vavilova 19",
    "bank_accounts": [
        {
            "bank_name": "Sberbank",
            "bik": "044525225",
            "account": "40702810938000000001",
            "correspondent_account": "30101810400000000225",
        }
    ],
}


@pytest.fixture
def runtime(sqlite_url: str) -> Iterator[Runtime]:
    rt = make_runtime(sqlite_url)
    try:
        yield rt
    finally:
        rt.close()


def settle(runtime: Runtime) -> None:
    runtime.wait_for_views(runtime.app.recorder.max_notification_id())


def sber_with_people(runtime: Runtime) -> str:
    company_id = runtime.app.create_company(
        "test",
        "Sberbank",
        roles=["supplier"],
        legal_form="company",
        requisites=[SBER],
        client_group="wholesale",
    ).value
    for name in ("Olga Smirnova", "Ivan Petrov"):
        contact = runtime.app.create_contact(
            actor="test", name=name, identities=[("email", f"{name.split()[0]}@example.com")]
        ).value
        runtime.app.update_contact(contact, "test", company_id=company_id)
    settle(runtime)
    return str(company_id)


def text_of(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def test_the_page_shows_requisites_and_contacts(runtime: Runtime) -> None:
    company_id = sber_with_people(runtime)
    client, _, _ = web_client(runtime, "operator")
    page = client.get(f"/companies/{company_id}")
    assert page.status_code == 200
    shown = text_of(page.text)
    for expected in (
        "Sberbank",
        "Organisation",
        "Supplier",
        "wholesale",
        "Head office",
        "7707083893",
        "773601001",
        "1027700132195",
        "Moscow, Vavilova 19",
        "044525225",
        "40702810938000000001",
        "30101810400000000225",
    ):
        assert expected in shown, expected
    contacts = re.findall(r'<a href="/contacts/([0-9a-f-]+)">([^<]+)</a>', page.text)
    assert sorted(name for _, name in contacts) == ["Ivan Petrov", "Olga Smirnova"]
    assert 'id="company-deals"' in page.text  # the place the deals view fills
    # The contact card links to the company.
    contact_id = contacts[0][0]
    card = client.get(f"/contacts/{contact_id}/card")
    assert f'href="/companies/{company_id}"' in card.text


def edit_form(runtime: Runtime, company_id: str, **changes: Any) -> dict[str, Any]:
    found = company(runtime.views, company_id)
    assert found is not None
    first = found.requisites[0] if found.requisites else {}
    account = (first.get("bank_accounts") or [{}])[0]
    form: dict[str, Any] = {
        "name": found.name,
        "roles": found.roles,
        "legal_form": found.legal_form or "",
        "client_group": found.client_group,
        **{k: first.get(k, "") for k in routes_companies.SET_FIELDS},
        **{k: account.get(k, "") for k in routes_companies.ACCOUNT_FIELDS},
    }
    form.update(changes)
    return form


def test_the_edit_form_saves_through_the_command(runtime: Runtime) -> None:
    company_id = sber_with_people(runtime)
    client, csrf, _ = web_client(runtime, "manager")
    editor = client.get(f"/companies/{company_id}?edit=1")
    assert 'id="company-edit"' in editor.text
    assert 'value="40702810938000000001"' in editor.text  # the form starts from the company
    posted = edit_form(
        runtime,
        company_id,
        csrf_token=csrf,
        name="Sberbank PJSC",
        roles=["client", "partner"],
        client_group="retail",
        account="40702810938000000001",
        postal_address="Moscow, 117997",
    )
    saved = client.post(f"/companies/{company_id}", data=posted, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == f"/companies/{company_id}?done=saved"
    found = company(runtime.views, company_id)
    assert found is not None
    assert (found.name, found.roles, found.client_group) == (
        "Sberbank PJSC",
        ["client", "partner"],
        "retail",
    )
    assert found.requisites[0]["postal_address"] == "Moscow, 117997"
    assert found.requisites[0]["bank_accounts"] == SBER["bank_accounts"]


def test_a_wrong_check_digit_comes_back_next_to_its_field(runtime: Runtime) -> None:
    company_id = sber_with_people(runtime)
    client, csrf, _ = web_client(runtime, "manager", locale="ru")
    before = runtime.app.recorder.max_notification_id()
    posted = edit_form(runtime, company_id, csrf_token=csrf, account="40702810938000000002")
    refused = client.post(f"/companies/{company_id}", data=posted)
    assert refused.status_code == 422
    errors = dict(re.findall(r'data-error-for="(\w+)">([^<]+)<', refused.text))
    assert errors == {
        "account": "не соответствует БИК (неверный контрольный ключ): нет ли опечатки?"
    }
    assert 'value="40702810938000000002"' in refused.text  # what was typed stays in the form
    assert runtime.app.recorder.max_notification_id() == before
    # A sole trader has no КПП and a 12-digit ИНН: the company's 10-digit one is refused.
    posted = edit_form(runtime, company_id, csrf_token=csrf, legal_form="sole_trader", kpp="")
    refused = client.post(f"/companies/{company_id}", data=posted)
    assert refused.status_code == 422
    errors = dict(re.findall(r'data-error-for="(\w+)">([^<]+)<', refused.text))
    assert list(errors) == ["inn"] and "ИНН из 12 цифр" in errors["inn"]


def test_the_list_searches_filters_and_pages(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routes_companies, "PAGE_SIZE", 2)
    sber_with_people(runtime)
    for name in ("Alpha", "Bravo", "Charlie"):
        runtime.app.create_company("test", name, roles=["client"])
    settle(runtime)
    client, _, _ = web_client(runtime, "operator")

    def names(url: str) -> list[str]:
        response = client.get(url)
        assert response.status_code == 200
        return re.findall(r'<a href="/companies/[0-9a-f-]+">([^<]+)</a>', response.text)

    assert names("/companies") == ["Alpha", "Bravo"]
    assert names("/companies?page=2") == ["Charlie", "Sberbank"]
    assert names("/companies?role=supplier") == ["Sberbank"]
    assert names("/companies?q=770708") == ["Sberbank"]
    assert names("/companies?q=brav") == ["Bravo"]
    page = client.get("/companies?role=client")
    assert 'href="/companies?role=client&amp;page=2" rel="next"' in page.text


def test_a_new_company_from_the_list(runtime: Runtime) -> None:
    client, csrf, _ = web_client(runtime, "operator")
    made = client.post(
        "/companies", data={"csrf_token": csrf, "name": "Romashka"}, follow_redirects=False
    )
    assert made.status_code == 303
    company_id = made.headers["location"].split("/")[2].split("?")[0]
    found = company(runtime.views, company_id)
    assert found is not None and found.name == "Romashka"
    empty = client.post("/companies", data={"csrf_token": csrf, "name": "  "})
    assert empty.status_code == 422


@pytest.mark.parametrize("role", ["operator", "auditor"])
def test_the_pages_render_in_russian(runtime: Runtime, role: str) -> None:
    company_id = sber_with_people(runtime)
    client, csrf, _ = web_client(runtime, role, locale="ru")
    shown = text_of(client.get(f"/companies/{company_id}").text)
    for expected in ("Реквизиты", "Организация", "Поставщик", "Группа клиентов", "ИНН", "БИК"):
        assert expected in shown, expected
    listing = text_of(client.get("/companies").text)
    assert "Компании" in listing and "Правовая форма" in listing
    writer = role == "operator"
    assert ('id="company-new"' in client.get("/companies").text) == writer
    assert ('id="company-edit"' in client.get(f"/companies/{company_id}?edit=1").text) == writer
    if not writer:
        refused = client.post(f"/companies/{company_id}", data={"csrf_token": csrf, "name": "X"})
        assert refused.status_code == 403
        found = company(runtime.views, company_id)
        assert found is not None and found.name == "Sberbank"
