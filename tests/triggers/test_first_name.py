"""A contact known only by a number or an address has no first name, so greetings fall back.

Issue 11, item 7: "Hi +14155550142!" — a contact created from an SMS without a
sender name is named by its number, and `first_name` was that name's first word.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import make_runtime
from threadline.domain.model.contact import first_name_of
from threadline.domain.model.inbound import InboundMessage
from threadline.services.runtime import Runtime
from threadline.triggers.defaults import TEMPLATES
from threadline.triggers.events import TriggerEvent
from threadline.triggers.facts import FactReader
from threadline.triggers.templates import prepare_context, render

SHIPPED = {t["slug"]: t["variants"] for t in TEMPLATES}

phones = st.builds(
    lambda plus, groups, sep: ("+" if plus else "") + sep.join(groups),
    st.booleans(),
    st.lists(st.text("0123456789", min_size=1, max_size=4), min_size=1, max_size=5),
    st.sampled_from(["", " ", "-", " - ", ".", ") "]),
)
handles = st.from_regex(r"@[A-Za-z][A-Za-z0-9_]{2,30}", fullmatch=True)
addresses = st.one_of(phones, st.emails(), handles)
names = st.sampled_from(["", "Dr.", "Anna", "Анна Петрова", "Mary Ann"])


@given(value=addresses, rest=names)
def test_a_number_or_an_address_is_never_a_first_name(value: str, rest: str) -> None:
    for display_name in (value, f"{value} {rest}".strip(), f" {value}\n"):
        assert first_name_of(display_name, [value]) == ""
        context = prepare_context({"contact": {"display_name": display_name}})
        assert context["contact"]["first_name"] == ""
    # Given as a first name by whoever built the context, it is refused all the same.
    given_one = prepare_context({"contact": {"display_name": value, "first_name": value}})
    assert given_one["contact"]["first_name"] == ""


@given(value=addresses)
def test_the_shipped_greetings_fall_back_for_an_address(value: str) -> None:
    context = {
        "contact": {"display_name": value, "identities": [{"kind": "phone", "value": value}]}
    }
    welcome = render(SHIPPED["welcome-web-lead"], "email", context)
    assert welcome.text is not None and welcome.text.startswith("Hello,\n")
    assert value not in welcome.text.split("\n")[0]
    birthday = render(SHIPPED["birthday-greeting"], "sms", context)
    assert birthday.text == "Happy birthday!"


@given(name=st.sampled_from(["Anna Petrova", "Олег", "José María", "O'Neil Smith"]))
def test_a_real_name_still_greets(name: str) -> None:
    expected = name.split()[0]
    assert first_name_of(name) == expected
    birthday = render(SHIPPED["birthday-greeting"], "sms", {"contact": {"display_name": name}})
    assert birthday.text == f"Happy birthday, {expected}!"


@pytest.fixture
def runtime(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(database_url, attachments_dir=str(tmp_path / "a"))
    try:
        yield rt
    finally:
        rt.close()


def facts_for(runtime: Runtime, contact_id: Any) -> dict[str, Any]:
    from datetime import UTC, datetime

    event = TriggerEvent(
        names=("birthday",), cause_key="k", occurred_at=datetime.now(UTC),
        facts={"type": "birthday"}, contact_id=contact_id,
    )  # fmt: skip
    return FactReader(runtime.queries).facts(event)


def test_a_contact_created_from_a_number_is_greeted_without_it(runtime: Runtime) -> None:
    """The real path: an SMS without a sender name makes a contact named by its number."""
    committed = runtime.app.ingest(
        InboundMessage.create(
            channel="sms", dedup_key="sms-1", identities=[("phone", "+14155550142")], text="Hi"
        )
    )
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    facts = facts_for(runtime, committed.value.contact_id)
    assert facts["contact"]["display_name"] == "+14155550142"  # what the card shows
    assert facts["contact"]["first_name"] == ""
    welcome = render(SHIPPED["welcome-web-lead"], "email", facts)
    assert welcome.text is not None and welcome.text.startswith("Hello,\n")
    assert "+1415" not in (welcome.text or "") and "+1415" not in (welcome.subject or "")

    named = runtime.app.ingest(
        InboundMessage.create(
            channel="api", dedup_key="m-2", identities=[("email", "olga@example.com")],
            sender_name="Olga Smirnova", text="Hi",
        )
    )  # fmt: skip
    assert runtime.wait_for_views(named.notification_id, timeout=60)
    assert facts_for(runtime, named.value.contact_id)["contact"]["first_name"] == "Olga"
