"""The document templates screen: list, edit (refusals shown with their line), preview as HTML
and PDF, reset; admins change, other roles read with the form disabled and get 403."""

# ruff: noqa: RUF001

from __future__ import annotations

import html as html_module
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_runtime
from tests.web.helpers import web_client
from threadline.services.documents.template_source import shipped_source, template_for
from threadline.services.runtime import Runtime
from threadline.services.web import routes_auth
from threadline.services.web.login_limit import LoginLimiter

PAGE = "/admin/document-templates/act/ru"
OWN = "<h1>Акт № {{ document.display_number }}</h1>\n{% for line in lines %}<p>{{ line.name }}</p>{% endfor %}"


@pytest.fixture
def runtime(sqlite_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(sqlite_url, attachments_dir=str(tmp_path / "attachments"))
    routes_auth.limiter = LoginLimiter()
    try:
        yield rt
    finally:
        rt.close()


def textarea(page: str) -> str:
    found = re.search(r'<textarea name="source"[^>]*>(.*?)</textarea>', page, re.S)
    assert found, page
    return html_module.unescape(found.group(1))


def test_an_admin_edits_previews_and_resets_a_document_template(runtime: Runtime) -> None:
    client, csrf, _ = web_client(runtime, "admin")
    listing = client.get("/admin/document-templates")
    assert listing.status_code == 200
    assert 'data-kind="upd" data-language="ru"' in listing.text and PAGE in listing.text
    page = client.get(PAGE)
    assert page.status_code == 200 and textarea(page.text) == shipped_source("act", "ru")

    bad = "<h1>\n{% for line in lines %}{{ line.nmae }}{% endfor %}</h1>"
    refused = client.post(PAGE, data={"csrf_token": csrf, "name": "Акт", "source": bad})
    assert refused.status_code == 422
    error = re.search(r'data-error-for="source">([^<]*)<', refused.text)
    assert (
        error and "line 2" in error.group(1) and "line.nmae" in html_module.unescape(error.group(1))
    )
    assert textarea(refused.text) == bad  # kept as typed
    assert template_for(runtime.app, "act", "ru").shipped

    preview = client.post(f"{PAGE}/preview", data={"csrf_token": csrf, "source": OWN})
    assert preview.status_code == 200 and "<h1>Акт № С-15</h1>" in preview.text
    assert "sandbox" in preview.headers["content-security-policy"]
    pdf = client.post(f"{PAGE}/preview?format=pdf", data={"csrf_token": csrf, "source": OWN})
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert "attachment" in pdf.headers["content-disposition"]

    saved = client.post(
        PAGE, data={"csrf_token": csrf, "name": "Наш акт", "source": OWN}, follow_redirects=False
    )
    assert saved.status_code == 303 and saved.headers["location"] == f"{PAGE}?done=saved"
    in_force = template_for(runtime.app, "act", "ru")
    assert (in_force.source, in_force.name, in_force.version) == (OWN, "Наш акт", 1)
    page = client.get(PAGE)
    assert textarea(page.text) == OWN and "version 1" in page.text

    reset = client.post(f"{PAGE}/reset", data={"csrf_token": csrf}, follow_redirects=False)
    assert reset.status_code == 303
    assert template_for(runtime.app, "act", "ru").shipped
    assert client.get("/admin/document-templates/receipt/ru").status_code == 404


def test_other_roles_read_with_the_form_disabled_and_cannot_save(runtime: Runtime) -> None:
    client, csrf, _ = web_client(runtime, "manager", locale="ru")
    page = client.get(PAGE)
    assert page.status_code == 200 and "Шаблоны документов" in page.text
    assert re.search(r'<button type="submit" class="primary" disabled>', page.text)
    answer = client.post(PAGE, data={"csrf_token": csrf, "name": "x", "source": OWN})
    assert answer.status_code == 403
    assert client.post(f"{PAGE}/reset", data={"csrf_token": csrf}).status_code == 403
    assert template_for(runtime.app, "act", "ru").shipped
    listing = client.get("/admin/document-templates")
    assert (
        "Универсальный передаточный документ (УПД)" in listing.text
        and "стандартный" in listing.text
    )
