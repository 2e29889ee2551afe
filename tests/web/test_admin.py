"""The admin screens: rules, templates, campaigns, forms and inboxes, for every role.

Each screen renders for admins, managers, operators and auditors in English and
Russian; only managers and admins submit (only admins for inboxes), everyone
else sees disabled forms and gets 403 on a forced POST that changes nothing.
Validation errors come from the same functions as the API and are shown next
to the field they name, with 422; secrets never reach a page.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import make_runtime
from tests.web.helpers import web_client
from threadline.projections import automation, campaigns, forms
from threadline.projections.sql import row_count
from threadline.services.runtime import Runtime
from threadline.services.web import routes_auth
from threadline.services.web.admin.campaigns import parse_segment, segment_text
from threadline.services.web.login_limit import LoginLimiter

ADMIN_TOKEN = "admin-test-token"
API = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
IMAP_SECRET = "imap-pass-Zq81"
HOOK_SECRET = "hook-secret-Wx42"


@pytest.fixture
def runtime(sqlite_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(
        sqlite_url, attachments_dir=str(tmp_path / "attachments"), admin_token=ADMIN_TOKEN
    )
    routes_auth.limiter = LoginLimiter()
    try:
        yield rt
    finally:
        rt.close()


def client_for(runtime: Runtime, role: str, locale: str = "en") -> tuple[TestClient, str]:
    client, csrf, _ = web_client(runtime, role, locale)
    return client, csrf


def api(client: TestClient, method: str, path: str, **kwargs: Any) -> Any:
    response = client.request(method, path, headers=API, **kwargs)
    assert response.status_code < 300, response.text
    return response.json()


def errors_in(html: str) -> dict[str, str]:
    """The inline validation messages of a page, by the field they belong to."""
    found = re.findall(r'data-error-for="([^"]+)">([^<]*)<', html)
    return {key: message.replace("&#39;", "'").replace("&#34;", '"') for key, message in found}


def main_of(html: str) -> str:
    return html.split("<main", 1)[1]


def submit_buttons(html: str) -> list[str]:
    return re.findall(r"<button type=\"submit\"[^>]*>", main_of(html))


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def count(runtime: Runtime, table: str) -> int:
    return row_count(runtime.views, table)


def new_contact(client: TestClient, email: str, name: str, key: str) -> str:
    body = {"channel": "email", "external_id": key, "from": {"email": email, "name": name},
            "subject": "Hello", "text": "Hi there"}  # fmt: skip
    return str(api(client, "POST", "/api/inbound", json=body)["contact_id"])


def seed(runtime: Runtime) -> dict[str, Any]:
    """One of everything, made through the JSON API (a webhook secret and an IMAP password too)."""
    client = TestClient(create_app_for(runtime))
    template = {"slug": "welcome", "name": "Welcome",
                "variants": {"email": {"subject": "Hi {{ contact.first_name }}",
                                       "text": "Hello {{ contact.display_name }}"},
                             "default": {"text": "Hello {{ contact.first_name }}"}}}  # fmt: skip
    api(client, "POST", "/api/templates", json=template)
    rule = api(client, "POST", "/api/rules", json={
        "name": "Tell the CRM", "when": "message.received",
        "then": [{"webhook": {"url": "https://crm.example/hook", "secret": HOOK_SECRET}}],
    })  # fmt: skip
    campaign = api(client, "POST", "/api/campaigns",
                   json={"name": "Spring sale", "template": "welcome", "segment": {"tag": "vip"}})  # fmt: skip
    form = {"slug": "demo", "name": "Request a demo",
            "fields": [{"name": "email", "label": "E-mail", "type": "email", "required": True}],
            "mapping": {"email": "email"}}  # fmt: skip
    api(client, "POST", "/api/forms", json=form)
    api(client, "POST", "/api/inboxes", json={
        "slug": "mail", "channel": "email", "name": "Support mail",
        "settings": {"imap_host": "imap.example", "imap_password": IMAP_SECRET},
    })  # fmt: skip
    contact_id = new_contact(client, "anna@example.com", "Anna Petrova", "seed-1")
    return {"rule": rule["id"], "campaign": campaign["id"], "contact": contact_id}


def create_app_for(runtime: Runtime) -> Any:
    from threadline.services.api.app import create_app

    return create_app(runtime)


def pages(ids: dict[str, Any]) -> list[str]:
    return [
        "/admin/rules", "/admin/rules/new", f"/admin/rules/{ids['rule']}",
        f"/admin/rules/{ids['rule']}/firings",
        "/admin/templates", "/admin/templates/new", "/admin/templates/welcome",
        "/admin/campaigns", "/admin/campaigns/new", f"/admin/campaigns/{ids['campaign']}",
        "/admin/forms", "/admin/forms/new", "/admin/forms/demo",
        "/admin/inboxes", "/admin/inboxes/new?channel=email", "/admin/inboxes/mail",
    ]  # fmt: skip


# -- every page, every role, both languages -------------------------------------------------------


@pytest.mark.parametrize("locale", ["en", "ru"])
def test_every_page_renders_for_every_role_and_only_editors_can_submit(
    runtime: Runtime, locale: str
) -> None:
    ids = seed(runtime)
    for role in ("admin", "manager", "operator", "auditor"):
        client, _ = client_for(runtime, role, locale)
        for url in pages(ids):
            page = client.get(url)
            inbox_page = url.startswith("/admin/inboxes")
            if inbox_page and role != "admin":  # inbox configuration is for admins only
                assert page.status_code == 403, (role, url, page.status_code)
                assert IMAP_SECRET not in page.text and "imap.example" not in page.text
                continue
            assert page.status_code == 200, (role, url, page.text[:500])
            html = page.text
            assert IMAP_SECRET not in html and HOOK_SECRET not in html, (role, url)
            buttons = submit_buttons(html)
            may_edit = role == "admin" or role == "manager"
            if url.count("/") > 2 and not url.endswith("/firings"):  # an edit page has forms
                assert buttons, (role, url)
            for button in buttons:
                assert (" disabled" in button) != may_edit, (role, url, button)
            if locale == "ru":
                assert "Сохранить" in html or "Новое правило" in html or "Правила" in html, url
            assert ('href="/admin/inboxes"' in html) == (role == "admin"), (role, url)
        if locale == "ru":
            assert "Последние срабатывания" in client.get(f"/admin/rules/{ids['rule']}").text
            assert "Выгрузить в YAML" in client.get("/admin/rules").text


def test_the_rules_export_masks_webhook_secrets(runtime: Runtime) -> None:
    seed(runtime)
    client, _ = client_for(runtime, "auditor")
    exported = client.get("/admin/rules/export")
    assert exported.status_code == 200
    assert "attachment" in exported.headers["content-disposition"]
    assert "Tell the CRM" in exported.text and "welcome" in exported.text
    assert HOOK_SECRET not in exported.text and "********" in exported.text


# -- rules -------------------------------------------------------------------------------------


def rule_form(csrf: str, name: str, body: str, **extra: str) -> dict[str, str]:
    return {"csrf_token": csrf, "name": name, "priority": "50",
            "when_event": "message.received", "body": body, "enabled": "1", **extra}  # fmt: skip


def test_a_rule_with_a_bad_condition_shows_the_path_and_saves_nothing(runtime: Runtime) -> None:
    client, csrf = client_for(runtime, "manager")
    body = "if:\n  all:\n    - {field: contact.lifecycle, op: resembles, value: lead}\n" \
           "then:\n  - add_tag: x\n"  # fmt: skip
    answer = client.post("/admin/rules/new", data=rule_form(csrf, "Broken", body))
    assert answer.status_code == 422
    errors = errors_in(answer.text)
    assert errors["body"].startswith("if.all[0]") and "resembles" in errors["body"]
    assert "Broken" in answer.text and "resembles" in answer.text  # what was typed stays
    bad_when = client.post(
        "/admin/rules/new",
        data=rule_form(csrf, "Broken", "then: [add_tag: x]", when_custom="Nope!"),
    )
    assert bad_when.status_code == 422
    assert errors_in(bad_when.text)["when"].startswith("when.event")
    no_name = client.post("/admin/rules/new", data=rule_form(csrf, " ", "then: [add_tag: x]"))
    assert no_name.status_code == 422 and errors_in(no_name.text)["name"].startswith("name")
    not_yaml = client.post("/admin/rules/new", data=rule_form(csrf, "R", "then: [add_tag: x"))
    assert not_yaml.status_code == 422 and errors_in(not_yaml.text)["body"].startswith("YAML")
    no_template = client.post(
        "/admin/rules/new", data=rule_form(csrf, "R", "then:\n  - send_template: missing\n")
    )
    assert no_template.status_code == 422
    assert errors_in(no_template.text)["body"].startswith("then[0].send_template")
    assert count(runtime, "rules") == 0


def test_a_valid_rule_saves_appears_and_switches_off_and_on(runtime: Runtime) -> None:
    client, csrf = client_for(runtime, "manager")
    body = "if: {field: contact.lifecycle, op: eq, value: lead}\nthen:\n  - add_tag: hot-lead\n"
    saved = client.post(
        "/admin/rules/new",
        data=rule_form(csrf, "Tag hot leads", body, when_channel="telegram"),
        follow_redirects=False,
    )
    assert saved.status_code == 303
    listing = client.get(saved.headers["location"])
    assert "Tag hot leads" in listing.text and "Saved." in listing.text
    row = automation.rule_named(runtime.views, "Tag hot leads")
    assert row is not None and row.enabled
    definition = row.definition
    assert definition["when"] == {"event": "message.received", "channel": "telegram"}
    assert definition["priority"] == 50
    assert definition["then"] == [{"add_tag": "hot-lead"}]

    off = client.post(f"/admin/rules/{row.id}/enabled", data={"csrf_token": csrf,
                      "enabled": "0"}, follow_redirects=False)  # fmt: skip
    assert off.status_code == 303
    assert not automation.rules(runtime.views)[0].enabled
    assert "Switch on" in client.get("/admin/rules").text
    client.post(f"/admin/rules/{row.id}/enabled", data={"csrf_token": csrf, "enabled": "1"})
    assert automation.rules(runtime.views)[0].enabled

    # Editing shows the YAML back and saves a change; unticking "enabled" switches it off.
    edit = client.get(f"/admin/rules/{row.id}")
    assert "hot-lead" in edit.text and 'value="telegram"' in edit.text
    changed = client.post(
        f"/admin/rules/{row.id}",
        data={**rule_form(csrf, "Tag hot leads", "then:\n  - add_tag: warm\n"), "enabled": ""},
        follow_redirects=False,
    )
    assert changed.status_code == 303
    after = automation.rules(runtime.views)[0]
    assert after.definition["then"] == [{"add_tag": "warm"}]
    assert not after.enabled and count(runtime, "rules") == 1


def test_editing_a_rule_keeps_its_webhook_secret_without_showing_it(runtime: Runtime) -> None:
    ids = seed(runtime)
    client, csrf = client_for(runtime, "admin")
    page = client.get(f"/admin/rules/{ids['rule']}")
    assert HOOK_SECRET not in page.text and "********" in page.text
    body = re.search(r'<textarea name="body"[^>]*>([^<]*)</textarea>', page.text)
    assert body
    shown = body.group(1).replace("&#34;", '"').replace("&#39;", "'").replace("&amp;", "&")
    saved = client.post(
        f"/admin/rules/{ids['rule']}",
        data=rule_form(csrf, "Tell the CRM (renamed)", shown),
        follow_redirects=False,
    )
    assert saved.status_code == 303, errors_in(saved.text)
    row = automation.rule(runtime.views, ids["rule"])
    assert row is not None and row.name == "Tell the CRM (renamed)"
    # The log holds only the "secret set" mark; the secret stays in the secret store.
    webhook = row.definition["then"][0]["webhook"]
    assert webhook["secret"] == "********"
    from uuid import UUID

    from threadline.services.rule_secrets import stored_secret

    assert stored_secret(runtime.channels.secrets, UUID(ids["rule"]), webhook["url"]) == HOOK_SECRET


def test_a_rule_made_in_the_screen_fires_and_its_firings_are_explained(runtime: Runtime) -> None:
    client, csrf = client_for(runtime, "manager")
    body = "if: {field: contact.lifecycle, op: is_set}\nthen:\n  - add_tag: from-the-screen\n"
    saved = client.post("/admin/rules/new", data=rule_form(csrf, "Screen rule", body))
    assert saved.status_code == 200 and "Screen rule" in saved.text
    rule = automation.rules(runtime.views)[0]
    runtime.start_triggers()
    contact_id = new_contact(client, "boris@example.com", "Boris", "fire-1")

    def tagged() -> bool:
        card = runtime.queries.contact(contact_id)
        return bool(card and "from-the-screen" in card["tags"])

    wait_for(tagged, "the rule's tag")
    wait_for(lambda: count(runtime, "rule_firings"), "the firing in the views")
    firings = client.get(f"/admin/rules/{rule.id}/firings")
    assert firings.status_code == 200
    assert "message.received" in firings.text and "add_tag" in firings.text
    assert "contact.lifecycle" in firings.text and "fired" in firings.text
    assert "1" in main_of(client.get("/admin/rules").text)


def test_import_checks_the_whole_file_first_and_shows_the_error(runtime: Runtime) -> None:
    client, csrf = client_for(runtime, "manager")
    broken = "rules:\n  - name: Bad\n    when: message.received\n    then: []\n"
    answer = client.post("/admin/rules/import", data={"csrf_token": csrf, "yaml": broken})
    assert answer.status_code == 422
    assert errors_in(answer.text)["import"].startswith("rules[0] (Bad)")
    assert count(runtime, "rules") == 0
    good = (
        "templates:\n  - slug: hello\n    name: Hello\n    variants: {default: {text: Hi}}\n"
        "rules:\n  - name: Greet\n    when: message.received\n"
        "    then: [{send_template: {template: hello}}]\n"
    )
    uploaded = client.post(
        "/admin/rules/import",
        data={"csrf_token": csrf},
        files={"file": ("rules.yaml", good.encode(), "application/yaml")},
        follow_redirects=False,
    )
    assert uploaded.status_code == 303
    listing = client.get(uploaded.headers["location"]).text
    assert "Greet" in listing and "The rules file was imported." in listing
    assert count(runtime, "templates") == 1


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.text(max_size=120))
def test_any_rule_text_is_saved_or_refused_inline_never_a_crash(
    runtime: Runtime, body: str
) -> None:
    if not hasattr(runtime, "_admin_client"):
        runtime._admin_client = client_for(runtime, "manager")  # type: ignore[attr-defined]
    client, csrf = runtime._admin_client  # type: ignore[attr-defined]
    answer = client.post(
        "/admin/rules/new", data=rule_form(csrf, "Fuzz", body), follow_redirects=False
    )
    assert answer.status_code in (303, 422), answer.text[:300]
    if answer.status_code == 422:
        assert errors_in(answer.text)


# -- templates ---------------------------------------------------------------------------------


def template_form(csrf: str, slug: str = "promo", **values: str) -> dict[str, str]:
    return {"csrf_token": csrf, "slug": slug, "name": "Promo", **values}


def test_a_template_with_an_unknown_variable_shows_variant_field_and_line(
    runtime: Runtime,
) -> None:
    client, csrf = client_for(runtime, "manager")
    answer = client.post(
        "/admin/templates/new",
        data=template_form(
            csrf, email_subject="Hi", email_html="<p>Hello</p>\n<p>{{ contact.emial }}</p>"
        ),
    )
    assert answer.status_code == 422
    error = errors_in(answer.text)["email_html"]
    assert error.startswith("email.html (line 2)") and "emial" in error
    assert count(runtime, "templates") == 0
    missing_text = client.post("/admin/templates/new", data=template_form(csrf, sms_text=" "))
    assert missing_text.status_code == 422 and "variants" in errors_in(missing_text.text)
    bad_slug = client.post("/admin/templates/new", data=template_form(csrf, "Bad Slug!",
                           default_text="x"))  # fmt: skip
    assert bad_slug.status_code == 422 and "slug" in errors_in(bad_slug.text)
    assert count(runtime, "templates") == 0


def test_a_valid_template_saves_counts_sms_segments_and_previews(runtime: Runtime) -> None:
    client, csrf = client_for(runtime, "manager")
    contact_id = new_contact(client, "vera@example.com", "Vera Orlova", "tpl-1")
    saved = client.post(
        "/admin/templates/new",
        data=template_form(
            csrf,
            email_subject="Hi {{ contact.first_name }}",
            email_html="<p>Dear {{ contact.display_name }}</p>",
            sms_text="Sale for {{ contact.first_name }}",
            telegram_text="<b>{{ contact.first_name }}</b>",
            telegram_parse_mode="HTML",
        ),
        follow_redirects=False,
    )
    assert saved.status_code == 303 and saved.headers["location"].startswith(
        "/admin/templates/promo"
    )
    row = automation.template(runtime.views, "promo")
    assert row is not None
    variants = row.variants
    assert set(variants) == {"email", "sms", "telegram"}
    assert variants["telegram"] == {"text": "<b>{{ contact.first_name }}</b>", "parse_mode": "HTML"}
    page = client.get(saved.headers["location"]).text
    assert "Saved." in page and "{{ contact.first_name }}" in page
    # A second template with the same slug is refused on the slug.
    again = client.post("/admin/templates/new", data=template_form(csrf, default_text="x"))
    assert again.status_code == 409 and "slug" in errors_in(again.text)

    segments = client.get("/admin/templates/sms-segments", params={"sms_text": "x" * 161})
    assert segments.text.startswith("2 SMS segment(s), GSM-7, 161")
    cyrillic = client.get("/admin/templates/sms-segments", params={"sms_text": "Привет"})
    assert "UCS-2" in cyrillic.text

    preview = client.get(
        "/admin/templates/promo/preview",
        params={"contact": "VERA@example.com", "channel": "email"},
        headers={"HX-Request": "true"},
    )
    assert preview.status_code == 200
    assert "Hi Vera" in preview.text and 'sandbox=""' in preview.text
    assert "Dear Vera Orlova" in preview.text  # inside the escaped srcdoc attribute
    by_id = client.get("/admin/templates/promo/preview", params={"contact": contact_id,
                       "channel": "sms"})  # fmt: skip
    assert by_id.status_code == 200 and "Sale for Vera" in by_id.text
    nobody = client.get("/admin/templates/promo/preview", params={"contact": "no@example.com"})
    assert nobody.status_code == 404 and "preview" in errors_in(nobody.text)


# -- campaigns ---------------------------------------------------------------------------------


def test_campaigns_are_checked_created_started_paused_and_tested(runtime: Runtime) -> None:
    ids = seed(runtime)
    client, csrf = client_for(runtime, "manager")
    form = {"csrf_token": csrf, "name": "Autumn", "template": "welcome", "channel": "email"}
    bad = client.post("/admin/campaigns/new", data={**form, "segment": "attr.size.between=1"})
    assert bad.status_code == 422
    assert errors_in(bad.text)["segment"].startswith("segment.attr.size")
    unknown = client.post("/admin/campaigns/new", data={**form, "segment": "colour=red"})
    assert unknown.status_code == 422 and "segment.colour" in errors_in(unknown.text)["segment"]
    no_template = client.post("/admin/campaigns/new", data={**form, "template": "nope"})
    assert no_template.status_code == 422 and "template" in errors_in(no_template.text)
    slow = client.post("/admin/campaigns/new", data={**form, "per_minute": "0"})
    assert slow.status_code == 422 and "per_minute" in errors_in(slow.text)
    assert count(runtime, "campaigns") == 1

    created = client.post(
        "/admin/campaigns/new",
        data={**form, "segment": "tag=vip&tag=new&q=anna", "per_minute": "30"},
        follow_redirects=False,
    )
    assert created.status_code == 303
    campaign_id = created.headers["location"].split("/")[-1].split("?")[0]
    row = campaigns.campaign(runtime.views, campaign_id)
    assert row is not None
    assert row.segment == {"tag": ["vip", "new"], "q": "anna"}
    assert row.per_minute == 30 and row.state == "draft"
    detail = client.get(created.headers["location"]).text
    assert "Autumn" in detail and 'hx-trigger="sse:changed"' in detail

    early = client.post(f"/admin/campaigns/{campaign_id}/pause", data={"csrf_token": csrf})
    assert early.status_code == 409 and "nothing to pause" in errors_in(early.text)["action"]
    started = client.post(f"/admin/campaigns/{campaign_id}/start", data={"csrf_token": csrf})
    assert started.status_code == 200 and "The campaign has started." in started.text
    paused = client.post(f"/admin/campaigns/{campaign_id}/pause", data={"csrf_token": csrf})
    assert "The campaign is paused." in paused.text and "Resume" in paused.text
    paused_now = campaigns.campaign(runtime.views, campaign_id)
    assert paused_now is not None and paused_now.paused
    resumed = client.post(f"/admin/campaigns/{campaign_id}/resume", data={"csrf_token": csrf})
    assert "The campaign goes on." in resumed.text
    progress = client.get(f"/admin/campaigns/{campaign_id}/progress")
    assert progress.status_code == 200 and 'data-state="queued"' in progress.text

    nobody = client.post(f"/admin/campaigns/{ids['campaign']}/test",
                         data={"csrf_token": csrf, "contact": "nobody@example.com"})  # fmt: skip
    assert nobody.status_code == 404 and "contact" in errors_in(nobody.text)
    tested = client.post(f"/admin/campaigns/{ids['campaign']}/test",
                         data={"csrf_token": csrf, "contact": "anna@example.com"})  # fmt: skip
    assert tested.status_code == 200 and "The test message is on its way." in tested.text
    assert count(runtime, "campaign_tests") == 1
    listing = client.get("/admin/campaigns").text
    assert "Autumn" in listing and "Spring sale" in listing


def test_segments_written_as_query_strings_round_trip() -> None:
    segment = parse_segment("?attr.industry=retail&tag=vip&tag=new")
    assert segment == {"attr.industry": "retail", "tag": ["vip", "new"]}
    assert parse_segment(segment_text(segment)) == segment
    assert parse_segment("") == {}


# -- forms -------------------------------------------------------------------------------------


def web_form(csrf: str, rows: list[dict[str, str]], **extra: str) -> dict[str, str]:
    data = {"csrf_token": csrf, "slug": "lead", "name": "Leave a request", "rows": str(len(rows)),
            "rate_limit_per_minute": "10", "enabled": "1", **extra}  # fmt: skip
    for index, row in enumerate(rows):
        for key, value in row.items():
            data[f"f{index}_{key}"] = value
    return data


def test_forms_save_with_validation_next_to_the_right_field(runtime: Runtime) -> None:
    client, csrf = client_for(runtime, "manager")
    name_row = {"name": "name", "label": "Name", "type": "text", "maps": "name"}
    email_row = {"name": "email", "label": "E-mail", "type": "email", "maps": "email",
                 "required": "1"}  # fmt: skip
    blank = {"name": "", "label": "", "type": "text"}
    select = {"name": "plan", "label": "Plan", "type": "select", "options": ""}
    # The blank second row is skipped, yet the error lands on the select's own row (3rd).
    bad_row = client.post("/admin/forms/new", data=web_form(csrf, [email_row, blank, select]))
    assert bad_row.status_code == 422
    assert errors_in(bad_row.text)["f2_options"].startswith("fields.1.options")
    unreachable = client.post("/admin/forms/new", data=web_form(csrf, [name_row]))
    assert unreachable.status_code == 422 and "mapping" in errors_in(unreachable.text)
    wrong_type = client.post(
        "/admin/forms/new",
        data=web_form(csrf, [{"name": "agree", "label": "I agree", "type": "checkbox",
                              "maps": "phone"}, email_row]),
    )  # fmt: skip
    assert wrong_type.status_code == 422
    assert errors_in(wrong_type.text)["f0_maps"].startswith("mapping.agree: phone takes")
    bad_origin = client.post(
        "/admin/forms/new",
        data=web_form(csrf, [email_row], allowed_origins="https://shop.example/path"),
    )
    assert bad_origin.status_code == 422
    assert errors_in(bad_origin.text)["allowed_origins"].startswith("allowed_origins.0")
    assert count(runtime, "forms") == 0

    saved = client.post(
        "/admin/forms/new",
        data=web_form(csrf, [name_row, blank, email_row],
                      allowed_origins="https://Shop.Example\nhttps://blog.example",
                      thank_you_text="Thanks!"),
        follow_redirects=False,
    )  # fmt: skip
    assert saved.status_code == 303
    page = client.get(saved.headers["location"]).text
    assert "/forms/lead" in page and "data-threadline-form=&#34;lead&#34;" in page
    definition = forms.forms(runtime.views)[0].definition
    assert [f["name"] for f in definition["fields"]] == ["name", "email"]
    assert definition["allowed_origins"] == ["https://shop.example", "https://blog.example"]
    assert definition["mapping"] == {"name": "name", "email": "email"}

    changed = client.post(
        "/admin/forms/lead",
        data=web_form(csrf, [email_row], rate_limit_per_minute="3", enabled=""),
        follow_redirects=False,
    )
    assert changed.status_code == 303
    form_now = forms.forms(runtime.views)[0]
    assert form_now.definition["rate_limit_per_minute"] == 3 and not form_now.enabled
    taken = client.post("/admin/forms/new", data=web_form(csrf, [email_row]))
    assert taken.status_code == 409 and "slug" in errors_in(taken.text)


# -- inboxes -----------------------------------------------------------------------------------


def inbox_form(csrf: str, **settings: str) -> dict[str, str]:
    data = {"csrf_token": csrf, "slug": "sales", "channel": "email", "name": "Sales mail",
            "enabled": "1"}  # fmt: skip
    data.update({f"s_{k}": v for k, v in settings.items()})
    return data


def test_inboxes_save_with_validation_and_keep_secrets_out_of_pages(runtime: Runtime) -> None:
    client, csrf = client_for(runtime, "admin")
    form = client.get("/admin/inboxes/new?channel=email").text
    assert 'type="password" name="s_imap_password"' in form and "(not set)" in form
    bad_port = client.post("/admin/inboxes/new", data=inbox_form(csrf, imap_port="nine"))
    assert bad_port.status_code == 422
    assert errors_in(bad_port.text)["s_imap_port"] == "settings.imap_port: expected a whole number"
    assert runtime.channels.inbox("sales") is None
    bad_channel = client.post("/admin/inboxes/new", data={**inbox_form(csrf), "channel": "fax"})
    assert bad_channel.status_code == 422 and "channel" in errors_in(bad_channel.text)

    saved = client.post(
        "/admin/inboxes/new",
        data=inbox_form(csrf, imap_host="imap.example", imap_password=IMAP_SECRET,
                        imap_folders="INBOX, Sales"),
        follow_redirects=False,
    )  # fmt: skip
    assert saved.status_code == 303
    page = client.get(saved.headers["location"]).text
    assert IMAP_SECRET not in page and "(set)" in page and "INBOX, Sales" in page
    inbox = runtime.channels.inbox("sales")
    assert inbox is not None and inbox.secrets["imap_password"] == IMAP_SECRET
    assert inbox.settings["imap_folders"] == ["INBOX", "Sales"]

    # Left empty, the password stays; a new one replaces it.
    kept = client.post("/admin/inboxes/sales", data=inbox_form(csrf, imap_host="imap2.example"),
                       follow_redirects=False)  # fmt: skip
    assert kept.status_code == 303
    inbox = runtime.channels.inbox("sales")
    assert inbox is not None and inbox.settings["imap_host"] == "imap2.example"
    assert inbox.secrets["imap_password"] == IMAP_SECRET
    client.post("/admin/inboxes/sales", data=inbox_form(csrf, imap_password="new-Pass-77"))
    inbox = runtime.channels.inbox("sales")
    assert inbox is not None and inbox.secrets["imap_password"] == "new-Pass-77"
    taken = client.post("/admin/inboxes/new", data=inbox_form(csrf, imap_password="x-Other-9"))
    assert taken.status_code == 409 and "slug" in errors_in(taken.text)
    inbox = runtime.channels.inbox("sales")
    assert inbox is not None and inbox.secrets["imap_password"] == "new-Pass-77"
    for url in ("/admin/inboxes", "/admin/inboxes/sales"):
        html = client.get(url).text
        assert IMAP_SECRET not in html and "new-Pass-77" not in html


def test_every_channel_gets_a_settings_form_from_its_schema(runtime: Runtime) -> None:
    from threadline.channels.registry import load_adapters

    client, _ = client_for(runtime, "admin", "ru")
    for name, adapter in load_adapters().items():
        page = client.get("/admin/inboxes/new", params={"channel": name})
        assert page.status_code == 200, name
        for spec in adapter.settings_schema:
            assert f'name="s_{spec.name}"' in page.text, (name, spec.name)
            if spec.secret:
                assert re.search(rf'type="password" name="s_{spec.name}" value=""', page.text)
    unknown = client.get("/admin/inboxes/new", params={"channel": "fax"})
    assert unknown.status_code == 200 and "channel" in errors_in(unknown.text)


# -- who may post ------------------------------------------------------------------------------


def every_post(csrf: str, ids: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    rule_body = "then:\n  - add_tag: x\n"
    return [
        ("/admin/rules/new", rule_form(csrf, "Sneaky", rule_body)),
        (f"/admin/rules/{ids['rule']}", rule_form(csrf, "Sneaky", rule_body)),
        (f"/admin/rules/{ids['rule']}/enabled", {"csrf_token": csrf, "enabled": "0"}),
        ("/admin/rules/import", {"csrf_token": csrf, "yaml": "rules: []\n"}),
        ("/admin/templates/new", template_form(csrf, "sneaky", default_text="x")),
        ("/admin/templates/welcome", template_form(csrf, "welcome", default_text="changed")),
        ("/admin/campaigns/new", {"csrf_token": csrf, "name": "Sneaky", "template": "welcome"}),
        (f"/admin/campaigns/{ids['campaign']}/start", {"csrf_token": csrf}),
        (f"/admin/campaigns/{ids['campaign']}/test", {"csrf_token": csrf,
                                                        "contact": "anna@example.com"}),
        ("/admin/forms/new", web_form(csrf, [{"name": "email", "label": "E", "type": "email",
                                               "maps": "email"}])),
        ("/admin/forms/demo", web_form(csrf, [{"name": "email", "label": "E", "type": "email",
                                                "maps": "email"}], enabled="")),
        ("/admin/inboxes/new", inbox_form(csrf)),
        ("/admin/inboxes/mail", inbox_form(csrf, imap_password="stolen")),
    ]  # fmt: skip


def snapshot(runtime: Runtime) -> tuple[int, ...]:
    runtime.wait_for_views(runtime.app.recorder.max_notification_id())
    return (runtime.app.recorder.max_notification_id() or 0,)


@pytest.mark.parametrize("role", ["auditor", "operator"])
def test_readers_posts_are_refused_and_change_nothing(runtime: Runtime, role: str) -> None:
    ids = seed(runtime)
    client, csrf = client_for(runtime, role)
    before = snapshot(runtime)
    for url, data in every_post(csrf, ids):
        answer = client.post(url, data=data, follow_redirects=False)
        assert answer.status_code == 403, (role, url, answer.status_code)
    assert snapshot(runtime) == before
    inbox = runtime.channels.inbox("mail")
    assert inbox is not None and inbox.secrets["imap_password"] == IMAP_SECRET


def test_a_manager_cannot_save_inboxes(runtime: Runtime) -> None:
    seed(runtime)
    client, csrf = client_for(runtime, "manager")
    before = snapshot(runtime)
    for url in ("/admin/inboxes/new", "/admin/inboxes/mail"):
        assert client.post(url, data=inbox_form(csrf, imap_password="x")).status_code == 403
    assert snapshot(runtime) == before


def test_posts_without_the_csrf_token_are_refused(runtime: Runtime) -> None:
    ids = seed(runtime)
    client, csrf = client_for(runtime, "admin")
    before = snapshot(runtime)
    for url, data in every_post(csrf, ids):
        without = {k: v for k, v in data.items() if k != "csrf_token"}
        assert client.post(url, data=without).status_code == 403, url
        forged = {**without, "csrf_token": "forged"}
        assert client.post(url, data=forged).status_code == 403, url
    assert snapshot(runtime) == before


def test_unknown_things_are_404_pages(runtime: Runtime) -> None:
    client, csrf = client_for(runtime, "admin")
    missing = "00000000-0000-0000-0000-000000000001"
    for url in (f"/admin/rules/{missing}", f"/admin/rules/{missing}/firings",
                "/admin/templates/nope", f"/admin/campaigns/{missing}", "/admin/forms/nope",
                "/admin/inboxes/nope"):  # fmt: skip
        assert client.get(url).status_code == 404, url
    assert client.post(f"/admin/rules/{missing}/enabled",
                       data={"csrf_token": csrf, "enabled": "1"}).status_code == 404  # fmt: skip
