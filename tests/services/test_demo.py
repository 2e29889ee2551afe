"""The demo seed: varied, bilingual, on every channel, and idempotent."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from threadline.domain.commands.passwords import verify_password
from threadline.domain.model.identities import normalise_email, normalise_phone
from threadline.projections.base import ts
from threadline.projections.queries import ContactFilter, InboxFilter
from threadline.services.demo import (
    CHANNELS,
    DEMO_ACCOUNTS,
    DEMO_PASSWORD,
    DemoSummary,
    plan_contacts,
    seed_demo,
)
from threadline.services.runtime import Runtime

CYRILLIC = re.compile(r"[\u0400-\u04ff]")
LATIN = re.compile(r"[A-Za-z]")


def _caught_up(runtime: Runtime) -> None:
    assert runtime.wait_for_views(runtime.app.recorder.max_notification_id(), timeout=30)


def _all_contacts(runtime: Runtime) -> tuple[list[dict], int]:
    return runtime.queries.contacts(ContactFilter(), limit=1000)


def test_demo_fills_contacts_inbox_users_and_tasks(runtime: Runtime) -> None:
    summary = seed_demo(runtime, contacts=12)
    _caught_up(runtime)

    assert summary.users == len(DEMO_ACCOUNTS)
    assert summary.contacts == 12
    contacts, total = _all_contacts(runtime)
    assert total >= 12
    names = [contact["display_name"] for contact in contacts]
    assert any(CYRILLIC.search(name) for name in names)
    assert any(LATIN.search(name) and not CYRILLIC.search(name) for name in names)
    assert any(contact["tags"] for contact in contacts)
    assert any(contact["attributes"] for contact in contacts)
    assert any(contact["company_id"] for contact in contacts)

    conversations, _ = runtime.queries.inbox(InboxFilter(), limit=500)
    assert len({row["channel"] for row in conversations}) >= 4

    for account in DEMO_ACCOUNTS:
        user = runtime.queries.user_by_email(normalise_email(account.email))
        assert user is not None, account.email
        assert user["role"] == account.role
        assert user["locale"] == account.locale
        assert verify_password(runtime.credentials.password_hash(user["id"]), DEMO_PASSWORD)

    tasks = runtime.queries.tasks(status=None, limit=500)
    now = ts(datetime.now(UTC))
    assert any(task["status"] == "open" and task["due_at"] < now for task in tasks)
    assert any(task["status"] == "done" for task in tasks)


def test_second_run_appends_nothing(runtime: Runtime) -> None:
    seed_demo(runtime, contacts=12)
    _caught_up(runtime)
    before = runtime.app.recorder.max_notification_id()
    _, contacts_before = _all_contacts(runtime)

    again = seed_demo(runtime, contacts=12)

    assert runtime.app.recorder.max_notification_id() == before
    assert again == DemoSummary()
    _caught_up(runtime)
    assert _all_contacts(runtime)[1] == contacts_before


def test_a_bigger_demo_adds_only_the_new_clients(sqlite_runtime: Runtime) -> None:
    seed_demo(sqlite_runtime, contacts=7)
    more = seed_demo(sqlite_runtime, contacts=11)

    assert more.users == 0
    assert more.contacts == 4
    _caught_up(sqlite_runtime)
    assert _all_contacts(sqlite_runtime)[1] == 11
    # Client 10 works for a company client 6 brought in: the second run finds it by name.
    wanted = {plan.company[0] for plan in plan_contacts(11) if plan.company}
    companies = [row["name"] for row in sqlite_runtime.queries.companies()]
    assert sorted(companies) == sorted(wanted)


def test_existing_accounts_and_attributes_are_left_alone(sqlite_runtime: Runtime) -> None:
    app = sqlite_runtime.app
    app.create_user(DEMO_ACCOUNTS[0].email, "admin", "cli", password="someone-elses")
    summary = seed_demo(sqlite_runtime, contacts=2)

    assert summary.users == len(DEMO_ACCOUNTS) - 1
    _caught_up(sqlite_runtime)
    admin = sqlite_runtime.queries.user_by_email(normalise_email(DEMO_ACCOUNTS[0].email))
    assert admin is not None
    assert verify_password(sqlite_runtime.credentials.password_hash(admin["id"]), "someone-elses")


def test_default_demo_on_sqlite(sqlite_runtime: Runtime) -> None:
    calls: list[tuple[int, int]] = []
    summary = seed_demo(sqlite_runtime, progress=lambda done, total: calls.append((done, total)))
    _caught_up(sqlite_runtime)

    assert calls == [(done, 60) for done in range(1, 61)]
    assert summary.contacts == 60
    contacts, total = _all_contacts(sqlite_runtime)
    assert total >= 60
    russian = [c for c in contacts if CYRILLIC.search(c["display_name"])]
    assert 20 <= len(russian) <= 40
    conversations, _ = sqlite_runtime.queries.inbox(InboxFilter(), limit=500)
    assert {row["channel"] for row in conversations} == set(CHANNELS)
    assert {row["status"] for row in conversations} >= {"open", "pending", "resolved"}
    assert any(row["assignee_id"] for row in conversations)
    assert len(sqlite_runtime.queries.companies()) <= 8
    tags = {tag for contact in contacts for tag in contact["tags"]}
    assert tags >= {"vip", "wholesale", "b2b", "newsletter", "complaint"}


def test_plan_is_the_same_every_time_and_identities_are_distinct() -> None:
    first, second = plan_contacts(200), plan_contacts(200)
    assert first == second

    emails = [plan.persona.email for plan in first]
    phones = [plan.persona.phone for plan in first]
    telegrams = [plan.persona.telegram for plan in first]
    for values in (emails, phones, telegrams):
        assert len(set(values)) == len(values)
    assert all(normalise_phone(phone) == phone for phone in phones)
    assert all(normalise_email(email) == email for email in emails)
    for plan in first:
        assert 1 <= sum(len(c.messages) for c in plan.conversations) <= 4
        assert 1 <= len(plan.conversations) <= 2
