"""The sandbox channel: replies are written to a file instead of reaching anybody.

`make run` configures one for the demo, so that an operator trying the demo
sees replies go through the whole delivery path (requested → sending →
delivered) while the fictional clients' addresses are never contacted. It is
also the way to run a staging copy of production data safely.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

from threadline.channels.base import ChannelAdapter, OutboundMessage, SettingField, register

ALL_CHANNELS = ("email", "telegram", "sms", "whatsapp", "voice", "web", "api")


@register
class SandboxAdapter(ChannelAdapter):
    channel = "sandbox"
    title = "Sandbox (replies are written to a file, never sent)"
    settings_schema = (
        SettingField(
            "path", "File the replies are appended to", default="var/sandbox-outbox.jsonl"
        ),
    )
    conversation_channels = ALL_CHANNELS
    recipient_kind: ClassVar[dict[str, str]] = {
        "email": "email",
        "telegram": "telegram",
        "sms": "phone",
        "whatsapp": "phone",
        "voice": "phone",
        "web": "email",
        "api": "email",
    }

    async def send(self, message: OutboundMessage) -> str:
        record = {
            "at": datetime.now(UTC).isoformat(),
            "message_id": str(message.message_id),
            "channel": message.channel,
            "to": message.recipient,
            "subject": message.subject,
            "text": message.text,
        }
        path = Path(self.inbox.setting("path", "var/sandbox-outbox.jsonl"))
        await asyncio.to_thread(_append, path, json.dumps(record, ensure_ascii=False))
        return f"sandbox-{message.message_id.hex[:16]}"


def _append(path: Path, line: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(line + "\n")
