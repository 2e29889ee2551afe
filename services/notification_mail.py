"""The e-mail copy of a notification: what it is about, in the reader's language and time zone.

A reminder that says only "A task is due within the hour" is no use in a mailbox:
the mail names the task (with its due time in the operator's own zone), the
client and the conversation, and links each with an absolute URL from
`THREADLINE_PUBLIC_URL`, so a click from a phone opens the right screen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from babel import Locale
from babel.dates import format_datetime

from threadline.services.web.i18n import gettext, pick_locale
from threadline.services.web.local_time import zone

SUBJECT_LIMIT = 160


@dataclass(frozen=True)
class NotificationMail:
    subject: str
    text: str


def compose(
    note: dict[str, Any], public_url: str, locale: str | None, time_zone: str
) -> NotificationMail:
    """`note`: a notifications row with `task`, `contact`, `conversation` (see
    `projections.notification_details.with_details`)."""
    chosen = pick_locale(locale)
    _ = gettext(chosen)
    base = public_url.rstrip("/")
    headline = str(note.get("text") or "").strip() or _("Notification")
    task, contact, conversation = note.get("task"), note.get("contact"), note.get("conversation")
    lines = [headline, ""]
    about: list[str] = []
    if task:
        due = _when(task.get("due_at"), chosen, time_zone)
        line = f"{_('Task')}: {task['title']}"
        if due:
            line += f" — {_('due %(time)s') % {'time': due}}"
        lines += [line, f"{base}/tasks?scope=all#task-{task['id']}", ""]
        about.append(str(task["title"]))
    if contact:
        name = contact.get("display_name") or _("Unnamed client")
        lines += [f"{_('Client')}: {name}", f"{base}/contacts/{contact['id']}", ""]
        if str(name) not in headline:  # a rule's text often names the client already
            about.append(str(name))
    if conversation:
        subject = conversation.get("subject") or ""
        label = _("Open the conversation") + (f": {subject}" if subject else "")
        lines += [label, f"{base}/inbox/{conversation['id']}", ""]
    elif note.get("conversation_id"):
        lines += [_("Open the conversation"), f"{base}/inbox/{note['conversation_id']}", ""]
    if not (task or contact or conversation or note.get("conversation_id")):
        lines += [f"{base}/tasks#notifications", ""]
    subject = " — ".join([headline, *about])
    return NotificationMail(
        subject=f"[Threadline] {subject}"[:SUBJECT_LIMIT], text="\n".join(lines).rstrip() + "\n"
    )


def _when(value: Any, locale: str, time_zone: str) -> str:
    """A stored UTC time as the reader's clock shows it ("" when there is none)."""
    try:
        parsed = datetime.fromisoformat(str(value or "").replace("Z", "+00:00"))
    except ValueError:
        return ""
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return format_datetime(parsed, "short", tzinfo=zone(time_zone), locale=Locale.parse(locale))
