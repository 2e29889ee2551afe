"""The companies view: counterparties with their roles, legal form, group and requisites.

One row per company (the requisites as JSON, the first set's ИНН in its own indexed
column), plus two small index tables: the roles (to page through "suppliers") and
every ИНН of every set (to find the company of a bank statement's payer). The rows
were kept by the contact cards until issue 13; a view never built that finds their
old table drops it and rebuilds from the log.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from threadline.domain.model.company import Company
from threadline.projections.base import ViewProjection, dumps, handles, sid, ts
from threadline.projections.sql import ViewCursor, ViewReader, rows_with_ids, searchable

_CURRENT_COLUMN = "requisites"
"""A column the contact cards' old `companies` table did not have."""


class CompanyProjection(ViewProjection):
    name = "companies"
    version = 1
    tables = ("companies", "company_roles", "company_inns")
    schema = (
        "CREATE TABLE IF NOT EXISTS companies ("
        " id TEXT PRIMARY KEY, name TEXT NOT NULL, attributes TEXT NOT NULL,"
        " roles TEXT NOT NULL DEFAULT '[]', legal_form TEXT,"
        " client_group TEXT NOT NULL DEFAULT '', requisites TEXT NOT NULL DEFAULT '[]',"
        " inn TEXT, search TEXT NOT NULL DEFAULT '',"
        " created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS companies_name ON companies (name, id)",
        "CREATE INDEX IF NOT EXISTS companies_inn ON companies (inn)",
        "CREATE INDEX IF NOT EXISTS companies_group ON companies (client_group)",
        "CREATE TABLE IF NOT EXISTS company_roles ("
        " company_id TEXT NOT NULL, role TEXT NOT NULL, PRIMARY KEY (company_id, role))",
        "CREATE INDEX IF NOT EXISTS company_roles_role ON company_roles (role, company_id)",
        "CREATE TABLE IF NOT EXISTS company_inns ("
        " inn TEXT NOT NULL, company_id TEXT NOT NULL, PRIMARY KEY (inn, company_id))",
        "CREATE INDEX IF NOT EXISTS company_inns_company ON company_inns (company_id)",
    )

    def create_tables(self) -> None:
        self._drop_old_table()
        super().create_tables()

    def _drop_old_table(self) -> None:
        """Drop a `companies` table of the contact cards' old shape (it had no requisites).

        A table without the column was never written by this view, so nothing of this
        view is lost; with it gone, the view is built from position zero like a new one.
        The first statement is DDL, so on PostgreSQL the schema's DDL lock is held before
        the columns are read: two processes starting at once cannot both decide to drop.
        """
        with self.db.transaction() as cur:
            cur.execute(
                "CREATE TABLE IF NOT EXISTS view_versions (name TEXT PRIMARY KEY,"
                " version BIGINT NOT NULL)"
            )
            if self.db.postgres:
                sql = (
                    "SELECT column_name AS name FROM information_schema.columns"
                    " WHERE table_schema = current_schema() AND table_name = 'companies'"
                )
            else:
                sql = "SELECT name FROM pragma_table_info('companies')"
            columns = {str(row["name"]) for row in cur.execute(sql).fetchall()}
            if columns and _CURRENT_COLUMN not in columns:
                cur.execute("DROP TABLE companies")

    @handles(Company.CompanyCreated)
    def _created(self, event: Any, cur: ViewCursor) -> None:
        cur.execute(
            "INSERT INTO companies (id, name, attributes, search, created_at, updated_at)"
            " VALUES (?, ?, '{}', ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            [
                sid(event.originator_id),
                event.name,
                event.name.lower(),
                ts(event.timestamp),
                ts(event.timestamp),
            ],
        )

    @handles(Company.CompanyRenamed)
    def _renamed(self, event: Any, cur: ViewCursor) -> None:
        self._update(cur, event, "name", event.name)
        self._refresh_search(cur, sid(event.originator_id))

    @handles(Company.CompanyAttributesChanged)
    def _attributes(self, event: Any, cur: ViewCursor) -> None:
        row = cur.execute(
            "SELECT attributes FROM companies WHERE id = ?", [sid(event.originator_id)]
        ).fetchone()
        if row is None:
            return
        attributes = json.loads(row["attributes"])
        for key, value in {**event.values, **event.personal}.items():
            if value is None:
                attributes.pop(key, None)
            else:
                attributes[key] = value
        self._update(cur, event, "attributes", dumps(attributes))

    @handles(Company.CompanyRolesChanged)
    def _roles(self, event: Any, cur: ViewCursor) -> None:
        company_id = sid(event.originator_id)
        cur.execute("DELETE FROM company_roles WHERE company_id = ?", [company_id])
        for role in event.roles:
            cur.execute(
                "INSERT INTO company_roles (company_id, role) VALUES (?, ?)"
                " ON CONFLICT (company_id, role) DO NOTHING",
                [company_id, role],
            )
        self._update(cur, event, "roles", dumps(list(event.roles)))

    @handles(Company.CompanyLegalFormChanged)
    def _legal_form(self, event: Any, cur: ViewCursor) -> None:
        self._update(cur, event, "legal_form", event.legal_form)

    @handles(Company.CompanyGroupChanged)
    def _group(self, event: Any, cur: ViewCursor) -> None:
        self._update(cur, event, "client_group", event.client_group)
        self._refresh_search(cur, sid(event.originator_id))

    @handles(Company.CompanyRequisitesChanged)
    def _requisites(self, event: Any, cur: ViewCursor) -> None:
        company_id = sid(event.originator_id)
        sets = list(event.personal.get("requisites", []))
        inns = list(dict.fromkeys(str(s.get("inn") or "") for s in sets if s.get("inn")))
        cur.execute("DELETE FROM company_inns WHERE company_id = ?", [company_id])
        for inn in inns:
            cur.execute(
                "INSERT INTO company_inns (inn, company_id) VALUES (?, ?)"
                " ON CONFLICT (inn, company_id) DO NOTHING",
                [inn, company_id],
            )
        first = (sets[0].get("inn") or None) if sets else None
        cur.execute(
            "UPDATE companies SET requisites = ?, inn = ?, updated_at = ? WHERE id = ?",
            [dumps(sets), first, ts(event.timestamp), company_id],
        )
        self._refresh_search(cur, company_id)

    @staticmethod
    def _update(cur: ViewCursor, event: Any, column: str, value: Any) -> None:
        """Set one column (a name this module owns) and the change time."""
        cur.execute(
            f"UPDATE companies SET {column} = ?, updated_at = ? WHERE id = ?",
            [value, ts(event.timestamp), sid(event.originator_id)],
        )

    @staticmethod
    def _refresh_search(cur: ViewCursor, company_id: str | None) -> None:
        """The words `q` finds a company by: its name, its client group and every ИНН."""
        row = cur.execute(
            "SELECT name, client_group FROM companies WHERE id = ?", [company_id]
        ).fetchone()
        if row is None:
            return
        inns = [
            str(r["inn"])
            for r in cur.execute(
                "SELECT inn FROM company_inns WHERE company_id = ? ORDER BY inn", [company_id]
            ).fetchall()
        ]
        search = " ".join([row["name"], row["client_group"] or "", *inns]).lower()
        cur.execute("UPDATE companies SET search = ? WHERE id = ?", [search, company_id])


# -- readers ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompanyRow:
    """A company as the API and the pages show it (requisites as their stored state)."""

    id: str
    name: str
    attributes: dict[str, Any]
    roles: list[str]
    legal_form: str | None
    client_group: str
    requisites: list[dict[str, Any]]
    inn: str | None
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class CompanyContact:
    """A contact who works for a company (merged duplicates left out)."""

    id: str
    display_name: str
    lifecycle: str


@dataclass(frozen=True)
class CompanyFacts:
    """What a rule sees of a contact's company (requisites are personal data: not here)."""

    id: str
    name: str
    attributes: dict[str, Any]
    roles: list[str]
    legal_form: str | None
    client_group: str


_COLUMNS = (
    "id, name, attributes, roles, legal_form, client_group, requisites, inn, created_at, updated_at"
)


def _row(row: dict[str, Any]) -> CompanyRow:
    return CompanyRow(
        id=str(row["id"]),
        name=str(row["name"]),
        attributes=json.loads(row["attributes"] or "{}"),
        roles=json.loads(row["roles"] or "[]"),
        legal_form=row["legal_form"],
        client_group=str(row["client_group"] or ""),
        requisites=json.loads(row["requisites"] or "[]"),
        inn=row["inn"],
        created_at=str(row["created_at"]),
        updated_at=str(row["updated_at"]),
    )


def company(db: ViewReader, company_id: str) -> CompanyRow | None:
    row = db.query_one(f"SELECT {_COLUMNS} FROM companies WHERE id = ?", [company_id])
    return None if row is None else _row(row)


def company_names(db: ViewReader, company_ids: Iterable[str]) -> dict[str, str]:
    """The names of the given companies in one query per 400 ids (unknown ids left out)."""
    rows = rows_with_ids(db, "SELECT id, name FROM companies", company_ids)
    return {str(r["id"]): str(r["name"]) for r in rows}


def companies_page(
    db: ViewReader, limit: int, offset: int, q: str | None = None, role: str | None = None
) -> tuple[list[CompanyRow], int]:
    """One page of companies by name, and how many match in all.

    `q` finds text in the name or the client group, or a digit run of any ИНН;
    `role` keeps the companies that have it.
    """
    clauses: list[str] = []
    params: list[Any] = []
    text = searchable((q or "").strip().lower())
    if text:
        clauses.append("search LIKE ?")
        params.append(f"%{text}%")
    if role:
        clauses.append(
            "EXISTS (SELECT 1 FROM company_roles r WHERE r.company_id = companies.id"
            " AND r.role = ?)"
        )
        params.append(role)
    where = " AND ".join(clauses) or "1=1"
    total = db.query_one(f"SELECT COUNT(*) AS n FROM companies WHERE {where}", params)
    rows = db.query(
        f"SELECT {_COLUMNS} FROM companies WHERE {where} ORDER BY name, id LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return [_row(r) for r in rows], int(total["n"]) if total else 0


def companies_by_inn(db: ViewReader, inn: str) -> list[CompanyRow]:
    """Every company with `inn` in any of its sets, oldest first (branches may share one)."""
    rows = db.query(
        f"SELECT {_COLUMNS} FROM companies WHERE id IN"
        " (SELECT company_id FROM company_inns WHERE inn = ?) ORDER BY created_at, id",
        ["".join(inn.split()).replace("\x00", "")],
    )
    return [_row(r) for r in rows]


def company_by_inn(db: ViewReader, inn: str) -> CompanyRow | None:
    """The oldest company with `inn` in any of its sets (`companies_by_inn` for all of them)."""
    found = companies_by_inn(db, inn)
    return found[0] if found else None


def company_contacts(db: ViewReader, company_id: str) -> list[CompanyContact]:
    """The contacts linked to the company, by name (from the contact cards' table)."""
    rows = db.query(
        "SELECT id, display_name, lifecycle FROM contacts"
        " WHERE company_id = ? AND merged_into IS NULL ORDER BY display_name, id",
        [company_id],
    )
    return [CompanyContact(str(r["id"]), str(r["display_name"]), str(r["lifecycle"])) for r in rows]


def company_facts(db: ViewReader, company_id: str) -> CompanyFacts | None:
    found = company(db, company_id)
    if found is None:
        return None
    return CompanyFacts(
        found.id,
        found.name,
        found.attributes,
        found.roles,
        found.legal_form,
        found.client_group,
    )
