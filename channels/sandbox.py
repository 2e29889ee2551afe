"""The sandbox channel: replies are written to a file instead of reaching anybody.

`make run` configures one for the demo, so that an operator trying the demo
sees replies go through the whole delivery path (requested → sending →
delivered) while the fictional clients' addresses are never contacted. It is
also the way to run a staging copy of production data safely.
"""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime
from typing import ClassVar

from threadline.channels.base import (
    ChannelAdapter,
    DeliveryError,
    DeliveryErrorKind,
    OutboundMessage,
    SettingField,
    register,
)
from threadline.channels.settings import confined_path, data_file

ALL_CHANNELS = ("email", "telegram", "sms", "whatsapp", "voice", "web", "api")


@register
class SandboxAdapter(ChannelAdapter):
    channel = "sandbox"
    title = "Sandbox (replies are written to a file, never sent)"
    settings_schema = (
        SettingField(
            "path",
            "File the replies are appended to",
            default="var/sandbox-outbox.jsonl",
            help="A file under var/ (the server's data directory); nothing outside it.",
            max_length=255,
            check=data_file,
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
        setting = str(self.inbox.setting("path", "var/sandbox-outbox.jsonl"))
        await asyncio.to_thread(_append, setting, json.dumps(record, ensure_ascii=False))
        return f"sandbox-{message.message_id.hex[:16]}"


def _append(setting: str, line: str) -> None:
    """Append under the data directory only. Checked again at each send, not only at save: a
    symbolic link made later must not carry the server's writes out of `var/`."""
    try:
        path = confined_path(setting)
        path.parent.mkdir(parents=True, exist_ok=True)
        path = confined_path(setting)  # the directories just made are inside, still
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        descriptor = os.open(path, flags, 0o640)
    except (ValueError, OSError) as error:
        raise DeliveryError(
            DeliveryErrorKind.PERMANENT, f"the sandbox file {setting!r} is refused: {error}"
        ) from None
    with os.fdopen(descriptor, "a", encoding="utf-8") as out:
        out.write(line + "\n")
