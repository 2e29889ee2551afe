"""Content-addressed attachment storage: a file's name is the SHA-256 of its bytes.

The log records only metadata (`AttachmentMeta`: size, type, hash); the bytes
live here, once however many messages carry them. An attachment over the size
limit is not stored but still described, so the message is ingested and the
operator sees that something was left out.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from threadline.domain.inbound import AttachmentMeta

DEFAULT_MAX_BYTES = 25 * 1024 * 1024


class AttachmentStore:
    def __init__(self, folder: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.folder = Path(folder)
        self.max_bytes = max_bytes

    def path_for(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError("not a SHA-256 hex digest")
        return self.folder / sha256[:2] / sha256

    def put(self, data: bytes, filename: str, content_type: str) -> AttachmentMeta:
        """Store `data` (unless over the limit) and describe it."""
        digest = hashlib.sha256(data).hexdigest()
        filename = (filename or "attachment").replace("/", "_").replace("\\", "_")[:255]
        content_type = (content_type or "application/octet-stream")[:255]
        if len(data) > self.max_bytes:
            return AttachmentMeta(
                filename, content_type, len(data), digest, stored=False, over_limit=True
            )
        target = self.path_for(digest)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename: a crash never leaves a half file under the final name.
            handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(data)
                os.replace(temporary, target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        return AttachmentMeta(filename, content_type, len(data), digest)

    def describe_remote(
        self, filename: str, content_type: str, size: int, reference: str
    ) -> AttachmentMeta:
        """An attachment that stays at the provider (a Telegram file id, a Twilio media URL)."""
        digest = hashlib.sha256(reference.encode()).hexdigest()
        return AttachmentMeta(
            filename or "attachment",
            content_type or "application/octet-stream",
            size,
            digest,
            stored=False,
            over_limit=False,
            reference=reference,
        )

    def read(self, sha256: str) -> bytes:
        return self.path_for(sha256).read_bytes()
