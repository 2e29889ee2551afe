"""The document templates API: list, read, save (checked first), reset and preview, by role;
and the template in force as the documents service reads it (`template_for`)."""

# ruff: noqa: RUF001

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pypdf
import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_runtime
from threadline.domain.model.document_template import DocumentTemplate, document_template_id
from threadline.services.api.app import create_app
from threadline.services.documents.rendering import render_document
from threadline.services.documents.sample import sample_context
from threadline.services.documents.template_source import shipped_source, template_for
from threadline.services.runtime import Runtime

ADMIN = {"Authorization": "Bearer admin-secret"}
URL = "/api/document-templates/invoice/ru"
OWN = """<h1>Счёт № {{ document.display_number }}</h1>
<ul>{% for line in lines %}<li>{{ line.name }}: {{ line.total|money }}</li>{% endfor %}</ul>
<p>{{ amount_in_words }}</p>"""


@pytest.fixture
def api(sqlite_url: str) -> Iterator[tuple[TestClient, Runtime]]:
    runtime = make_runtime(sqlite_url, admin_token="admin-secret")
    try:
        with TestClient(create_app(runtime)) as client:
            yield client, runtime
    finally:
        runtime.close()


def token_for(client: TestClient, role: str) -> dict[str, str]:
    response = client.post(
        "/api/users", json={"email": f"{role}@example.com", "role": role}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def events_of(runtime: Runtime) -> list[str]:
    template_id = document_template_id("invoice", "ru")
    return [type(e).__name__ for e in runtime.app.events.get(template_id)]


def test_every_kind_and_language_starts_with_its_shipped_template(
    api: tuple[TestClient, Runtime],
) -> None:
    client, _ = api
    listed = ok(client.get("/api/document-templates", headers=ADMIN))
    assert listed["total"] == 16
    assert all(item["shipped"] and item["version"] is None for item in listed["items"])
    assert {(i["kind"], i["language"]) for i in listed["items"]} >= {("upd", "ru"), ("act", "en")}
    invoice = ok(client.get(URL, headers=ADMIN))
    assert invoice["id"] == "shipped:invoice:ru" and invoice["name"] == "Счёт на оплату"
    assert invoice["source"] == shipped_source("invoice", "ru")


def test_an_admin_saves_changes_and_resets_a_template(api: tuple[TestClient, Runtime]) -> None:
    client, runtime = api
    saved = ok(client.put(URL, json={"name": "Наш счёт", "source": OWN}, headers=ADMIN))
    assert (saved["shipped"], saved["version"], saved["name"]) == (False, 1, "Наш счёт")
    assert ok(client.get(URL, headers=ADMIN))["source"] == OWN
    # the same text again records nothing; a new one is a change
    assert (
        ok(client.put(URL, json={"name": "Наш счёт", "source": OWN}, headers=ADMIN))["version"] == 1
    )
    changed = ok(client.put(URL, json={"source": OWN + "<p>!</p>"}, headers=ADMIN))
    assert changed["version"] == 2 and changed["name"] == "Счёт на оплату"  # the default name
    in_force = template_for(runtime.app, "invoice", "ru")
    assert (in_force.id, in_force.version, in_force.shipped) == (saved["id"], 2, False)
    # the documents service renders with the saved text and can record its version
    made = render_document(runtime.app, "invoice", "ru", sample_context("invoice", "ru"))
    assert "<li>Маршрутизатор RT-1: 30\xa0001,20</li>" in made.html and made.template.version == 2
    assert (
        made.pdf is not None
        and "Маршрутизатор" in pypdf.PdfReader(io.BytesIO(made.pdf)).pages[0].extract_text()
    )

    reset = ok(client.delete(URL, headers=ADMIN))
    assert reset["shipped"] and reset["version"] == 3 and reset["id"] == "shipped:invoice:ru"
    assert reset["source"] == shipped_source("invoice", "ru")
    assert ok(client.delete(URL, headers=ADMIN))["version"] == 3  # already shipped: nothing new
    assert events_of(runtime) == [
        "DocumentTemplateSaved",
        "DocumentTemplateChanged",
        "DocumentTemplateReset",
    ]
    stored = runtime.app.repository.get(document_template_id("invoice", "ru"))
    assert isinstance(stored, DocumentTemplate) and not stored.edited
    # other kinds and languages are untouched
    assert ok(client.get("/api/document-templates/invoice/en", headers=ADMIN))["shipped"]


def test_a_bad_template_is_refused_with_its_line_and_nothing_is_recorded(
    api: tuple[TestClient, Runtime],
) -> None:
    client, runtime = api
    bad = "<table>\n{% for line in lines %}\n<tr><td>{{ line.nmae }}</td></tr>{% endfor %}</table>"
    answer = client.put(URL, json={"source": bad}, headers=ADMIN)
    assert answer.status_code == 422, answer.text
    (detail,) = answer.json()["detail"]
    assert detail["loc"] == ["body", "source"] and detail["line"] == 3
    assert "line.nmae" in detail["msg"] and "did you mean 'name'" in detail["msg"]
    for source, expected in (
        ("{{ document.__class__ }}", "not accessible"),
        ("{% for line in lines %}", "end of template"),
        ("{% for a in range(1000) %}{% for b in range(1000) %}x{% endfor %}{% endfor %}", "budget"),
    ):
        answer = client.put(URL, json={"source": source}, headers=ADMIN)
        assert answer.status_code == 422 and expected in answer.text, answer.text
    assert client.put(URL, json={"source": ""}, headers=ADMIN).status_code == 422
    assert client.put(URL, json={"source": "x", "extra": 1}, headers=ADMIN).status_code == 422
    assert client.get("/api/document-templates/receipt/ru", headers=ADMIN).status_code == 422
    assert (
        client.put(
            "/api/document-templates/invoice/de", json={"source": "x"}, headers=ADMIN
        ).status_code
        == 422
    )
    assert events_of(runtime) == []
    assert ok(client.get(URL, headers=ADMIN))["shipped"]


def test_only_admins_change_templates_and_everyone_reads_and_previews(
    api: tuple[TestClient, Runtime],
) -> None:
    client, runtime = api
    for role in ("manager", "operator", "auditor"):
        headers = token_for(client, role)
        assert client.put(URL, json={"source": OWN}, headers=headers).status_code == 403
        assert client.delete(URL, headers=headers).status_code == 403
        assert ok(client.get(URL, headers=headers))["shipped"]
        assert client.post(f"{URL}/preview", headers=headers).status_code == 200
    assert client.get(URL).status_code == 401
    assert events_of(runtime) == []


def test_a_preview_renders_the_given_or_the_stored_text_as_html_or_pdf(
    api: tuple[TestClient, Runtime],
) -> None:
    client, runtime = api
    shown = client.post(f"{URL}/preview", json={"source": OWN}, headers=ADMIN)
    assert shown.status_code == 200 and shown.headers["content-type"].startswith("text/html")
    assert "<h1>Счёт № С-15</h1>" in shown.text and "Маршрутизатор RT-1" in shown.text
    policy = shown.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "sandbox" in policy and "script" not in policy
    stored = client.post(f"{URL}/preview", headers=ADMIN)  # no body: the text in force
    assert "Банк получателя" in stored.text
    pdf = client.post(f"{URL}/preview?format=pdf", json={"source": OWN}, headers=ADMIN)
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    text = pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    assert "Счёт № С-15" in text
    refused = client.post(
        f"{URL}/preview", json={"source": "<p>\n{{ buyer.nmae }}</p>"}, headers=ADMIN
    )
    assert refused.status_code == 422 and refused.json()["detail"][0]["line"] == 2
    assert client.post(f"{URL}/preview?format=doc", headers=ADMIN).status_code == 422
    assert events_of(runtime) == []  # a preview records nothing
