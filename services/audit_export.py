"""Exporting the history for an auditor: JSON lines and a readable HTML report.

What is exported is the feed (`services/audit_feed.py`) for a contact (with the contacts merged
into it) or for a period: every event with its position, time, actor, correlation id, cause and
content as the log holds it. The JSON lines are for machines (one event per line, exactly the
feed's items); the HTML report is for people: when, who (a user's or a rule's name), what (the
message's text and subject, the change, its attachments by name, type and size) and why (the
position of the event it answers), in log order, with the range of positions and the chain's
state at the time of the export, so a later `threadline audit verify` can show the log was not
changed since.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from jinja2 import Environment, FileSystemLoader, select_autoescape

from threadline.projections.base import ts
from threadline.projections.sql import ViewReader
from threadline.services.audit_feed import MAX_PAGE, AuditEvent, AuditFilter, audit_page

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    autoescape=select_autoescape(["html"]),
)

SUMMARY_FIELDS = ("subject", "text", "name", "display_name", "status", "reason", "tags", "title")
DETAIL_FIELDS = ("channel", "direction", "amount", "stage_id", "assignee_id", "outcome")
"""Fields of an event's content the HTML report shows as its "what" (where present)."""


@dataclass(frozen=True)
class ExportScope:
    """What an export covers, as its header says it."""

    contact_id: str | None = None
    start: str | None = None
    end: str | None = None

    def audit_filter(self) -> AuditFilter:
        return AuditFilter(contact_id=self.contact_id, start=self.start, end=self.end)

    def describe(self) -> str:
        parts = []
        if self.contact_id:
            parts.append(f"contact {self.contact_id} (and the contacts merged into it)")
        if self.start or self.end:
            parts.append(f"recorded from {self.start or 'the beginning'} to {self.end or 'now'}")
        return ", ".join(parts) or "the whole log"


def exported_events(
    db: ViewReader, log: Any, scope: ExportScope, progress: Callable[[int], None] | None = None
) -> Iterator[AuditEvent]:
    """Every event of the scope in log order, a page at a time."""
    after, count = 0, 0
    while True:
        page = audit_page(db, log, scope.audit_filter(), after, MAX_PAGE)
        for event in page.events:
            count += 1
            yield event
        if progress is not None:
            progress(count)
        if page.next_after is None:
            return
        after = page.next_after


def write_jsonl(events: Iterator[AuditEvent], out: TextIO) -> int:
    """One JSON object per line (the feed's items); how many were written."""
    count = 0
    for event in events:
        out.write(json.dumps(event.as_dict(), ensure_ascii=False, sort_keys=True) + "\n")
        count += 1
    return count


def summary(event: AuditEvent) -> list[tuple[str, str]]:
    """(label, text) pairs of what the event says, for people."""
    data = event.data
    found: list[tuple[str, str]] = []
    personal = data.get("personal")
    sources = [personal] if isinstance(personal, dict) else []
    sources.append(data)
    for source in sources:
        for name in SUMMARY_FIELDS:
            value = source.get(name)
            if value not in (None, "", [], {}) and name not in {label for label, _ in found}:
                found.append(
                    (name, ", ".join(map(str, value)) if isinstance(value, list) else str(value))
                )
    for name in DETAIL_FIELDS:
        value = data.get(name)
        if value not in (None, "", [], {}):
            found.append(
                (
                    name,
                    json.dumps(value, ensure_ascii=False)
                    if isinstance(value, dict)
                    else str(value),
                )
            )
    return found


def attachments(event: AuditEvent) -> list[dict[str, Any]]:
    """A message's files: type, size and content hash, with the names its personal part keeps."""
    files = event.data.get("attachments")
    if not isinstance(files, list):
        return []
    personal = event.data.get("personal")
    names = personal.get("attachment_names", []) if isinstance(personal, dict) else []
    return [
        {**f, "filename": names[i] if i < len(names) else ""}
        for i, f in enumerate(files)
        if isinstance(f, dict)
    ]


def render_html(
    events: list[AuditEvent], scope: ExportScope, exported_by: str, chain: dict[str, Any]
) -> str:
    """The readable report of `events` (see the module's docstring)."""
    template = TEMPLATES.get_template("audit/export.html")
    return template.render(
        scope=scope.describe(),
        exported_at=ts(datetime.now(UTC)),
        exported_by=exported_by,
        chain=chain,
        first=events[0].position if events else None,
        last=events[-1].position if events else None,
        rows=[{"event": e, "summary": summary(e), "attachments": attachments(e)} for e in events],
    )


def chain_state(chain: Any) -> dict[str, Any]:
    """The chain's sealed head at the time of an export (position and link, hex)."""
    position, link = chain.head()
    return {"sealed_position": position, "link": link.hex()}
