"""Content-addressed attachment storage: a file's name is the SHA-256 of its bytes.

The log records only metadata (`AttachmentMeta`: size, type, hash); the bytes
live here, once however many messages carry them. An attachment over the size
limit is not stored but still described, so the message is ingested and the
operator sees that something was left out.

Files kept at a provider (a Telegram file id, a Twilio media URL) are downloaded
by their channel before the message is recorded (`fetched`); when that fails the
message is recorded all the same, with the attachment described by its reference
and the reason (`not_downloaded`). Such a file is fetched again when someone opens
it, and the store then remembers which bytes belong to the reference (`remember`,
a small file under `refs/`), since the log, being append-only, keeps saying "not
downloaded". `locate` answers both ways: by the recorded hash, or by the reference.

The folder is `THREADLINE_ATTACHMENTS_DIR`; every process that ingests or serves
messages must see the same folder (a shared volume in the multi-process mode).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from threadline.domain.model.inbound import AttachmentMeta

DEFAULT_MAX_BYTES = 25 * 1024 * 1024
FETCH_SECONDS = 10.0
"""How long a channel spends downloading one message's files before recording it without
them: below Twilio's 15 s webhook timeout, so a slow media server never loses the SMS."""


class FetchFailed(Exception):
    """A file could not be downloaded from its provider; `reason` says why, for operators."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TooLarge(FetchFailed):
    """The provider's file is larger than the store takes (`max_bytes`)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"larger than the limit of {limit} bytes")
        self.limit = limit


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
            _write_whole(target, data)
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

    # -- files kept at a provider ---------------------------------------------------------

    def fetched(
        self, reference: str, data: bytes, filename: str, content_type: str
    ) -> AttachmentMeta:
        """A provider's file, downloaded: stored like any other, its reference kept (so a
        Telegram file can be sent again by id) and remembered (see `remember`)."""
        meta = self.put(data, filename, content_type)
        if meta.stored:
            self.remember(reference, meta.sha256)
        return replace(meta, reference=reference)

    def not_downloaded(
        self, filename: str, content_type: str, size: int, reference: str, reason: str
    ) -> AttachmentMeta:
        """A provider's file that could not be downloaded: described, with the reason."""
        meta = self.describe_remote(filename, content_type, size, reference)
        return replace(meta, error=f"not downloaded: {reason}"[:500])

    def too_large(
        self, filename: str, content_type: str, size: int, reference: str
    ) -> AttachmentMeta:
        """A provider's file over the limit: described as such and never fetched again."""
        meta = self.describe_remote(filename, content_type, size, reference)
        return replace(meta, over_limit=True)

    def _reference_path(self, reference: str) -> Path:
        return self.folder / "refs" / hashlib.sha256(reference.encode()).hexdigest()

    def remember(self, reference: str, sha256: str) -> None:
        """Note that `reference` (a file id, a media URL) is the file stored as `sha256`."""
        self.path_for(sha256)  # a digest, not a path
        _write_whole(self._reference_path(reference), sha256.encode())

    def locate(self, item: Mapping[str, Any]) -> Path | None:
        """The stored file of one recorded attachment (its `public()` form), or None: by its
        hash when it was stored, else by its reference when it was fetched later."""
        digest = str(item.get("sha256") or "")
        if item.get("stored"):
            try:
                path = self.path_for(digest)
            except ValueError:
                return None
            return path if path.is_file() else None
        reference = str(item.get("reference") or "")
        if not reference:
            return None
        try:
            remembered = self._reference_path(reference).read_text().strip()
            path = self.path_for(remembered)
        except (OSError, ValueError):
            return None
        return path if path.is_file() else None


def read_limited(chunks: Iterable[bytes], max_bytes: int) -> bytes:
    """The bytes of a download, or `TooLarge` as soon as they pass `max_bytes` (a provider's
    announced size can be missing or wrong, so the count is what decides)."""
    parts: list[bytes] = []
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > max_bytes:
            raise TooLarge(max_bytes)
        parts.append(chunk)
    return b"".join(parts)


def _write_whole(target: Path, data: bytes) -> None:
    """Write then rename: a crash never leaves a half file under the final name."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
