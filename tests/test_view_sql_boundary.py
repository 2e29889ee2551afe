"""Views own their schema: no SQL against the view database outside `projections/`.

Each projection module exports typed readers (`threadline.projections.<view>`), and
everything else reads the views through them, so a view's tables can change shape
in one place. This test walks every Python file of the other packages, the tests and
the benchmarks and lists each line that talks SQL to the view database directly.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECKED = ("channels", "domain", "triggers", "services", "tests", "bench")

# `<something>.views.query(...)`, `views.query_one(...)`, `views.transaction()`,
# `views.execute(...)`, and the `Queries` object's own database (`queries.db.<anything>`).
DIRECT_SQL = re.compile(
    r"\bviews\s*\.\s*(?:query|query_one|transaction|execute|executemany)\s*\("
    r"|\bqueries\s*\.\s*db\s*\."
)


def direct_sql_lines() -> list[str]:
    found = []
    for folder in CHECKED:
        for path in sorted((ROOT / folder).rglob("*.py")):
            if path.resolve() == Path(__file__).resolve():
                continue
            text = path.read_text(encoding="utf-8")
            for number, line in enumerate(text.splitlines(), start=1):
                if DIRECT_SQL.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    return found


def test_the_pattern_finds_what_it_should() -> None:
    """The guard itself: it sees each way of writing view SQL, and not the readers."""
    flagged = [
        "rows = runtime.views.query('SELECT 1')",
        "row = self.views.query_one('SELECT 1')",
        "with runtime.views.transaction() as cur:",
        "row = self.queries.db.query_one('SELECT 1')",
    ]
    allowed = [
        "rows = automation.rules(runtime.views)",
        "state_db.query('SELECT 1')",
        "self.db.query('SELECT value FROM channel_state')",
        "filters.query()",
    ]
    assert all(DIRECT_SQL.search(line) for line in flagged)
    assert not any(DIRECT_SQL.search(line) for line in allowed)


def test_no_view_sql_outside_projections() -> None:
    lines = direct_sql_lines()
    assert not lines, "SQL against the views outside projections/ (use a reader):\n" + "\n".join(
        lines
    )
