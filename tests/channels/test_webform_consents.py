"""Consent boxes on web forms (152-FZ art. 9, GDPR art. 7), through the real store.

A form asks for consent with a separate, unticked box per purpose, labelled with the
published policy's title and showing its full text and version; a required box left
unticked refuses the submission like a missing required field, and the ticked ones
are recorded on the contact with the form as `via` and the text version in force.
A form naming a purpose that has no published policy is refused when it is saved.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from tests.channels.test_webforms import (
    ADMIN,
    HTML,
    contact_form,
    field_errors,
    inbox_items,
    open_api,
)
from threadline.channels.webforms import (
    CONSENT_TICKS,
    InvalidSubmission,
    RequestContext,
    clean_submission,
    submission_from_json,
    submission_from_pairs,
)
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.form import Form, FormDefinition, form_id_for
from threadline.projections.consents import ConsentRow, consents_of
from threadline.services.runtime import Runtime

PERSONAL = "personal-data"
MARKETING = "marketing"
PERSONAL_TITLE = "I agree to the processing of my personal data"
MARKETING_TITLE = "Send me news and offers"
PERSONAL_BOX = f"consent:{PERSONAL}"
MARKETING_BOX = f"consent:{MARKETING}"
CONSENTS = [{"purpose": PERSONAL, "required": True}, {"purpose": MARKETING, "required": False}]


@pytest.fixture
def api(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Runtime]]:
    client, runtime = open_api(sqlite_url, tmp_path)
    try:
        with client:
            yield client, runtime
    finally:
        runtime.close()


def publish(runtime: Runtime, purpose: str, title: str, text: str) -> int:
    committed = runtime.app.publish_consent_policy(purpose, title, text, False, "test")
    runtime.wait_for_views(committed.notification_id, timeout=60)
    version: int = committed.value
    return version


def publish_both(runtime: Runtime) -> None:
    publish(runtime, PERSONAL, PERSONAL_TITLE, "Full text v1")
    publish(
        runtime, MARKETING, MARKETING_TITLE, "We write at most once a week.\nUnsubscribe any time."
    )


def simple_form(**overrides: Any) -> dict[str, Any]:
    """The contact form without attribute mappings, asking for both consents."""
    fields = [f for f in contact_form()["fields"] if f["name"] in ("full_name", "email", "message")]
    form = contact_form(fields=fields, mapping={"full_name": "name", "email": "email"})
    form["consents"] = CONSENTS
    form.update(overrides)
    return form


def define(client: TestClient, **overrides: Any) -> dict[str, Any]:
    response = client.post("/api/forms", json=simple_form(**overrides), headers=ADMIN)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def consent_inputs(page: str) -> dict[str, str]:
    """Each consent checkbox of the page: its name -> the whole <input> tag."""
    tags = re.findall(r"<input[^>]*>", page, re.S)
    found = {}
    for tag in tags:
        name = re.search(r'name="(consent:[^"]+)"', tag)
        if name:
            found[name.group(1)] = " ".join(tag.split())
    return found


def consent(runtime: Runtime, contact_id: str, purpose: str) -> ConsentRow:
    [row] = [r for r in consents_of(runtime.views, UUID(contact_id)) if r.purpose == purpose]
    return row


# -- the page -----------------------------------------------------------------------------------


def test_the_page_shows_a_separate_unticked_box_per_consent_with_its_text(
    api: tuple[TestClient, Runtime],
) -> None:
    client, runtime = api
    publish_both(runtime)
    form = define(client)
    assert form["consents"] == CONSENTS

    page = client.get("/forms/contact")
    assert page.status_code == 200
    boxes = consent_inputs(page.text)
    assert set(boxes) == {PERSONAL_BOX, MARKETING_BOX}
    for tag in boxes.values():
        assert 'type="checkbox"' in tag and "checked" not in tag
    assert "required" in boxes[PERSONAL_BOX] and "required" not in boxes[MARKETING_BOX]
    assert PERSONAL_TITLE in page.text and MARKETING_TITLE in page.text
    # the full text is right there, with its version
    assert "<details" in page.text and "Full text v1" in page.text
    assert "We write at most once a week.\nUnsubscribe any time." in page.text
    assert "(version 1)" in page.text

    script = client.get("/forms/contact/embed.js").text
    config = json.loads(script.split("var config = ", 1)[1].split(";\n", 1)[0])
    assert [(c["name"], c["required"], c["title"], c["text"], c["text_version"])
            for c in config["consents"]] == [
        (PERSONAL_BOX, True, PERSONAL_TITLE, "Full text v1", 1),
        (MARKETING_BOX, False, MARKETING_TITLE,
         "We write at most once a week.\nUnsubscribe any time.", 1),
    ]  # fmt: skip


# -- submissions --------------------------------------------------------------------------------


def test_a_required_consent_left_unticked_is_refused_and_nothing_is_ingested(
    api: tuple[TestClient, Runtime],
) -> None:
    client, runtime = api
    publish_both(runtime)
    define(client)
    lead = {"full_name": "Anna", "email": "anna@example.com"}

    browser = client.post("/forms/contact", data={**lead, MARKETING_BOX: "yes"}, headers=HTML)
    assert browser.status_code == 422
    assert f"Tick the box to agree: {PERSONAL_TITLE}" in browser.text
    boxes = consent_inputs(browser.text)  # the page again: the client's own tick is kept
    assert "checked" in boxes[MARKETING_BOX] and "checked" not in boxes[PERSONAL_BOX]

    for value in (None, False, "", "no", "off", "0"):
        body = {**lead} if value is None else {**lead, PERSONAL_BOX: value}
        response = client.post("/forms/contact", json=body)
        assert response.status_code == 422, (value, response.text)
        assert field_errors(response) == {PERSONAL_BOX: f"Tick the box to agree: {PERSONAL_TITLE}"}
    assert inbox_items(client) == []


def test_ticked_consents_are_recorded_with_the_form_and_the_text_version(
    api: tuple[TestClient, Runtime],
) -> None:
    client, runtime = api
    publish_both(runtime)
    define(client)
    response = client.post(
        "/forms/contact",
        data={"full_name": "Anna", "email": "anna@example.com", PERSONAL_BOX: "yes",
              MARKETING_BOX: "yes"},
        headers=HTML,
        follow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 303, response.text
    [row] = inbox_items(client)
    contact_id = row["contact_id"]
    for purpose in (PERSONAL, MARKETING):
        given_row = consent(runtime, contact_id, purpose)
        assert given_row.status == "current"
        assert given_row.via == "form:contact"
        assert given_row.text_version == 1 and given_row.given_at

    # the business changes the text: the consent to version 1 no longer counts
    assert publish(runtime, PERSONAL, PERSONAL_TITLE, "Full text v2") == 2
    outdated = consent(runtime, contact_id, PERSONAL)
    assert outdated.status == "outdated"
    assert (outdated.text_version, outdated.current_version) == (1, 2)
    assert consent(runtime, contact_id, MARKETING).status == "current"
    page = client.get("/forms/contact").text
    assert "Full text v2" in page and "(version 2)" in page

    # the form asks again; a script's JSON tick records the new version
    again = client.post(
        "/forms/contact",
        json={"full_name": "Anna", "email": "anna@example.com", PERSONAL_BOX: True},
    )
    assert again.status_code == 201, again.text
    assert again.json()["contact_id"] == contact_id
    renewed = consent(runtime, contact_id, PERSONAL)
    assert renewed.status == "current" and renewed.text_version == 2
    timeline = client.get(f"/api/contacts/{contact_id}/timeline", headers=ADMIN)
    assert timeline.status_code == 200, timeline.text
    given = [i["data"] for i in timeline.json()["items"] if i["kind"] == "consent.given"]
    assert sorted((d["purpose"], d["text_version"], d["via"]) for d in given) == [
        (MARKETING, 1, "form:contact"),
        (PERSONAL, 1, "form:contact"),
        (PERSONAL, 2, "form:contact"),
    ]


def test_an_optional_consent_left_unticked_is_not_given(api: tuple[TestClient, Runtime]) -> None:
    client, runtime = api
    publish_both(runtime)
    define(client)
    response = client.post(
        "/forms/contact",
        json={"full_name": "Boris", "email": "boris@example.com", PERSONAL_BOX: "on"},
    )
    assert response.status_code == 201, response.text
    contact_id = response.json()["contact_id"]
    assert consent(runtime, contact_id, PERSONAL).status == "current"
    assert consent(runtime, contact_id, MARKETING).status == "none"
    # the same values with the optional box ticked too are a new submission, not a duplicate
    more = client.post(
        "/forms/contact",
        json={"full_name": "Boris", "email": "boris@example.com", PERSONAL_BOX: "on",
              MARKETING_BOX: True},
    )  # fmt: skip
    assert more.status_code == 201 and more.json()["duplicate"] is False, more.text
    assert consent(runtime, contact_id, MARKETING).status == "current"


# -- saving forms -------------------------------------------------------------------------------


def test_a_form_naming_an_unpublished_purpose_is_refused_at_save(
    api: tuple[TestClient, Runtime],
) -> None:
    client, runtime = api
    publish(runtime, PERSONAL, PERSONAL_TITLE, "Full text v1")
    refused = client.post("/api/forms", json=simple_form(), headers=ADMIN)
    assert refused.status_code == 422, refused.text
    [error] = refused.json()["detail"]
    assert error["loc"] == ["body", "consents", "1", "purpose"]
    assert "marketing" in error["msg"] and "publish" in error["msg"]
    assert client.get("/api/forms/contact", headers=ADMIN).status_code == 404

    define(client, consents=CONSENTS[:1])
    patched = client.patch("/api/forms/contact", json={"consents": CONSENTS}, headers=ADMIN)
    assert patched.status_code == 422
    assert [str(p) for p in patched.json()["detail"][0]["loc"][1:]] == ["consents", "1", "purpose"]
    publish(runtime, MARKETING, MARKETING_TITLE, "News text")
    patched = client.patch("/api/forms/contact", json={"consents": CONSENTS}, headers=ADMIN)
    assert patched.status_code == 200 and patched.json()["consents"] == CONSENTS


@pytest.mark.parametrize(
    ("consents", "loc"),
    [
        ("personal-data", ["consents"]),
        ([{"purpose": f"p{i}"} for i in range(11)], ["consents"]),
        (["personal-data"], ["consents", "0"]),
        ([{"purpose": "Not A Slug"}], ["consents", "0", "purpose"]),
        ([{"purpose": ""}], ["consents", "0", "purpose"]),
        ([{"purpose": PERSONAL}, {"purpose": PERSONAL, "required": True}], ["consents", "1", "purpose"]),
    ],
)  # fmt: skip
def test_bad_consents_are_422_naming_the_field(
    api: tuple[TestClient, Runtime], consents: Any, loc: list[str]
) -> None:
    client, runtime = api
    publish(runtime, PERSONAL, PERSONAL_TITLE, "Full text v1")
    response = client.post("/api/forms", json=simple_form(consents=consents), headers=ADMIN)
    assert response.status_code == 422, response.text
    assert [str(part) for part in response.json()["detail"][0]["loc"][1:]] == loc


def test_a_field_cannot_take_a_consent_box_name() -> None:
    data = simple_form(fields=[{"name": PERSONAL_BOX, "label": "x", "type": "email"}],
                       mapping={}, consents=[])  # fmt: skip
    with pytest.raises(InvalidInput) as refused:
        FormDefinition.create(data)
    assert refused.value.field == "fields.0.name"


def test_a_definition_recorded_without_consents_still_loads(
    api: tuple[TestClient, Runtime],
) -> None:
    """Forms defined before consents existed: their event's definition has no such key."""
    client, runtime = api
    old = FormDefinition.create(simple_form(consents=[])).as_dict()
    del old["consents"]
    assert FormDefinition.from_dict(old).consents == ()

    def record(unit: UnitOfWork) -> None:
        unit.add(Form(id=form_id_for("contact"), slug="contact", definition=old, actor="test",
                      correlation_id="old"))  # fmt: skip

    committed = runtime.app.writer.submit(record)
    runtime.wait_for_views(committed.notification_id, timeout=60)
    got = client.get("/api/forms/contact", headers=ADMIN)
    assert got.status_code == 200 and got.json()["consents"] == []
    assert consent_inputs(client.get("/forms/contact").text) == {}
    sent = client.post("/forms/contact", json={"full_name": "Old", "email": "old@example.com"})
    assert sent.status_code == 201, sent.text

    # saving it unchanged records nothing (the missing key reads as its default)
    def version() -> int:
        form = runtime.app.form("contact")
        assert form is not None
        return int(form.version)

    before = version()
    same = client.patch("/api/forms/contact", json={"name": old["name"]}, headers=ADMIN)
    assert same.status_code == 200
    assert version() == before


# -- a tick is a tick ---------------------------------------------------------------------------

REQUIRED_ONLY = FormDefinition.create(
    simple_form(consents=[{"purpose": PERSONAL, "required": True}])
)
LEAD = {"full_name": "Vera", "email": "vera@example.com"}


def is_tick(value: Any) -> bool:
    """The oracle: JSON true, or one of the tick words (a JSON number is read as its text)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | str):
        return str(value).strip().lower() in CONSENT_TICKS
    return False


json_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=3),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["yes", " YES ", "On", "true", "1", "no", "off", "false", "0", "checked",
                     "y", "agree", "да", "1.0", "tru e"]),
)  # fmt: skip


@given(value=json_value)
def test_only_a_tick_agrees_to_a_required_consent(value: Any) -> None:
    """Consent is an explicit act: whatever else a box's value is, the form is refused."""
    submissions = [submission_from_json({**LEAD, PERSONAL_BOX: value})]
    if isinstance(value, str):
        submissions.append(submission_from_pairs([*LEAD.items(), (PERSONAL_BOX, value)]))
    for submission in submissions:
        try:
            clean = clean_submission(REQUIRED_ONLY, submission, RequestContext(), None)
        except InvalidSubmission as refused:
            assert not is_tick(value)
            assert set(refused.errors) == {PERSONAL_BOX}
        else:
            assert is_tick(value)
            assert clean.consents == (PERSONAL,)
