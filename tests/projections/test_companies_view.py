"""The companies view on SQLite and PostgreSQL: its readers, a rebuild, and the move out of the
contact cards (a views database of before finds its old `companies` table replaced)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import make_runtime
from threadline.domain.model.company import Company
from threadline.projections.base import ViewProjection, handles, sid, ts
from threadline.projections.companies import (
    companies_by_inn,
    company,
    company_by_inn,
    company_facts,
)
from threadline.projections.sql import ViewCursor, table_rows
from threadline.services import view_stack
from threadline.services.runtime import Runtime

SBER = {
    "inn": "7707083893",
    "kpp": "773601001",
    "bank_accounts": [{"bik": "044525225", "account": "40702810938000000001"}],
}
BRANCH = {"label": "Branch", "inn": "7707083893", "kpp": "773643001"}
YANDEX = {"inn": "7736207543"}


def settle(runtime: Runtime) -> None:
    assert runtime.wait_for_views(runtime.app.recorder.max_notification_id(), timeout=60)


def test_readers_find_companies_by_any_inn(runtime: Runtime) -> None:
    app = runtime.app
    sber = app.create_company("test", "Sber", legal_form="company", requisites=[SBER]).value
    other = app.create_company("test", "Sber branch office", legal_form="company").value
    app.update_company(other, "test", requisites=[YANDEX, BRANCH])
    app.update_company(other, "test", roles=["partner"], client_group="retail")
    settle(runtime)
    found = company(runtime.views, str(other))
    assert found is not None
    assert found.inn == "7736207543"  # the first set's
    assert [c.name for c in companies_by_inn(runtime.views, "7707083893")] == [
        "Sber",
        "Sber branch office",
    ]
    first = company_by_inn(runtime.views, "7707 083 893")
    assert first is not None and first.id == str(sber)
    assert company_by_inn(runtime.views, "7736207543") == found
    assert company_by_inn(runtime.views, "500100732259") is None
    facts = company_facts(runtime.views, str(other))
    assert facts is not None
    assert (facts.roles, facts.client_group, facts.legal_form) == (["partner"], "retail", "company")
    # Replacing the sets forgets the ИНН that is gone.
    app.update_company(other, "test", requisites=[BRANCH])
    settle(runtime)
    assert company_by_inn(runtime.views, "7736207543") is None


def test_a_rebuild_gives_the_same_rows(runtime: Runtime) -> None:
    app = runtime.app
    for i in range(5):
        made = app.create_company("test", f"Company {i}", roles=["client"]).value
        if i % 2:
            app.update_company(made, "test", legal_form="company", requisites=[SBER])
        app.update_company(made, "test", name=f"Renamed {i}", client_group="wholesale")
    settle(runtime)
    tables = {
        "companies": "id",
        "company_roles": "company_id, role",
        "company_inns": "inn, company_id",
    }

    def rows() -> dict[str, list[dict[str, object]]]:
        return {t: table_rows(runtime.views, t, order) for t, order in tables.items()}

    before = rows()
    assert len(before["companies"]) == 5 and len(before["company_inns"]) == 2
    runtime.runner.stop()
    runtime.rebuild_views()
    assert rows() == before


class ContactCardsOfBefore(ViewProjection):
    """The part of the contact cards that kept the companies until issue 13 (version 4)."""

    name = "contact_cards"
    version = 4
    tables = ("companies",)
    schema = (
        "CREATE TABLE IF NOT EXISTS companies ("
        " id TEXT PRIMARY KEY, name TEXT NOT NULL, attributes TEXT NOT NULL,"
        " created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
    )

    @handles(Company.CompanyCreated)
    def _company_created(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "INSERT INTO companies (id, name, attributes, created_at, updated_at)"
            " VALUES (?, ?, '{}', ?, ?) ON CONFLICT (id) DO NOTHING",
            [sid(event.originator_id), event.name, ts(event.timestamp), ts(event.timestamp)],
        )


def test_an_old_views_database_gets_the_new_table(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A views database of before has the contact cards' `companies` (name and attributes
    only) and no companies view: the new view replaces the table and builds it from the log."""
    with monkeypatch.context() as before:
        before.setattr(view_stack, "PROJECTION_CLASSES", (ContactCardsOfBefore,))
        runtime = make_runtime(database_url)
        try:
            made = runtime.app.create_company("test", "Acme", client_group="wholesale")
            assert runtime.wait_for_views(made.notification_id, timeout=60)
            acme = str(made.value)
        finally:
            runtime.close()
    runtime = make_runtime(database_url)
    try:
        settle(runtime)
        found = company(runtime.views, acme)
        assert found is not None and found.client_group == "wholesale"
        assert [row["id"] for row in runtime.queries.companies()] == [acme]
    finally:
        runtime.close()
