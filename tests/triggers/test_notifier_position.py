"""The notifier keeps a position instead of rescanning unsendable notifications (item 19).

With the mail server down, each pass used to read and sort every unsent notification
and try the same first twenty again, every second. Now a pass reads the next page after
its position; what failed is tried again only when the position goes back to the start.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any
from uuid import uuid4

from tests.conftest import make_runtime
from tests.run_apart import run_apart
from threadline.domain.model.automation import Notification
from threadline.projections.automation import unsent_notification_count
from threadline.services.notifier import PAGE, NotificationMailer

ACTOR = "user:test"


def closed_port() -> int:
    """A local port nothing listens on (sending there fails at once, transiently)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def add_notifications(runtime: Any, user_id: Any, count: int) -> None:
    def command(unit: Any) -> None:
        for i in range(count):
            unit.add(
                Notification(
                    id=uuid4(), user_id=user_id, contact_id=None, conversation_id=None,
                    email=True, personal={"text": f"Reminder {i}"}, actor=ACTOR,
                    correlation_id="test",
                )
            )  # fmt: skip

    committed = runtime.app.writer.submit(command)
    assert runtime.wait_for_views(committed.notification_id, timeout=60)


def test_unsendable_notifications_are_not_retried_every_pass(
    database_url: str, tmp_path: Path
) -> None:
    runtime = make_runtime(database_url, attachments_dir=str(tmp_path / "a"))
    try:
        user_id, _ = runtime.app.create_user("ops@example.com", "operator", ACTOR).value
        config = runtime.settings
        mailer = NotificationMailer(
            runtime.channels,
            runtime.views,
            runtime.app.writer,
            config.public_url,
            config.timezone,
        )
        add_notifications(runtime, user_id, 45)
        # No inbox can send: nothing is tried (nor read).
        assert run_apart(mailer.run_once()) == 0
        settings = {
            "smtp_host": "127.0.0.1", "smtp_port": closed_port(), "smtp_security": "none",
            "from_address": "support@example.com", "from_name": "Support",
        }  # fmt: skip
        runtime.channels.configure("mail", "email", "Mail", settings, ACTOR)
        assert runtime.wait_for_views(runtime.app.recorder.max_notification_id() or 0)

        async def passes(count: int) -> list[int]:
            return [await mailer.run_once() for _ in range(count)]

        assert run_apart(passes(6)) == [PAGE, PAGE, 5, 0, 0, 0]  # each tried once
        assert unsent_notification_count(runtime.views) == 45
        add_notifications(runtime, user_id, 3)
        assert run_apart(passes(2)) == [3, 0]  # only the new ones
        mailer.retry_at = 0.0  # the retry period is over: from the start again
        assert run_apart(passes(1)) == [PAGE]
    finally:
        runtime.close()
