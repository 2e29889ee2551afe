"""A rule's `notify` with `email: true` reaches the operator's mailbox once."""

from __future__ import annotations

import time
from email import message_from_bytes, policy
from pathlib import Path

from tests.channels.conftest import smtp_capture  # noqa: F401  (fixture)
from tests.channels.dovecot import SmtpCapture
from tests.conftest import make_runtime
from threadline.domain.model.inbound import InboundMessage
from threadline.projections.automation import notifications
from threadline.triggers.rules import validate_rule


def test_notifications_are_emailed_to_the_operator(
    sqlite_url: str,
    tmp_path: Path,
    smtp_capture: SmtpCapture,  # noqa: F811
) -> None:
    runtime = make_runtime(sqlite_url, attachments_dir=str(tmp_path / "a"))
    try:
        user_id, _ = runtime.app.create_user("ops@example.com", "operator", "test").value
        runtime.channels.configure("mail", "email", "Mail", smtp_capture.settings(), "test")
        rule = validate_rule(
            {
                "name": "Tell the operator",
                "when": "message.received",
                "then": [
                    {
                        "notify": {
                            "user": f"user:{user_id}",
                            "text": "{{ contact.display_name }} wrote",
                            "email": True,
                        }
                    }
                ],
            }
        )
        runtime.app.save_rule(rule, "test")
        runtime.start_triggers()
        runtime.channels.start(pollers=False)
        runtime.channels.ingest(
            InboundMessage.create(
                channel="api",
                dedup_key="m1",
                identities=[("email", "client@example.com")],
                sender_name="Zoe Client",
                text="Hello",
            )
        )
        [mail] = smtp_capture.wait_for(1, seconds=60)
        assert mail.rcpt_tos == ["ops@example.com"]
        parsed = message_from_bytes(mail.raw, policy=policy.default)
        assert parsed["Subject"] == "[Threadline] Zoe Client wrote"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            row = next(iter(notifications(runtime.views)), None)
            if row and row.emailed:
                break
            time.sleep(0.05)
        assert row and row.emailed is True
        time.sleep(1.5)
        assert len(smtp_capture.messages) == 1
    finally:
        runtime.close()
