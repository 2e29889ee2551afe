"""What the reports' slice pickers offer that no other reader lists: the client groups in use."""

from __future__ import annotations

from threadline.projections.sql import ViewReader

MAX_GROUPS = 500


def client_groups(db: ViewReader) -> list[str]:
    """The distinct non-empty client groups of the companies (the `companies_group` index)."""
    rows = db.query(
        "SELECT DISTINCT client_group FROM companies WHERE client_group <> ''"
        f" ORDER BY client_group LIMIT {MAX_GROUPS}"
    )
    return [str(r["client_group"]) for r in rows]
