"""Tamper evidence for the log: a SHA-256 chain over every stored event, in commit order.

Each event's link is SHA-256 over the previous link, its position, its aggregate id and
version, its topic and its stored bytes (what the store holds: compressed, and encrypted
where the event is, so a forgotten contact's history still verifies). The links live in
`event_chain` in the store's own database, one row per position.

**Sealed by a follower, not in the append transaction.** The writer's group commit appends
dozens of events per transaction and its speed is the product's ingest rate; chaining there
would put a read of the last link and a hash per event inside the one lock every append
takes, and a second process appending (the distributed mode) would have to serialize on
the link too. A follower reads the log in position order, as the views do, so it needs no
lock and costs the writer nothing; the price is a window the size of its lag (normally
under a second) in which an event is stored but not yet sealed. `verify` says how many
events are unsealed, and signed checkpoints (`checkpoint`, Ed25519) pin the chain at a
position, so even rewriting the whole chain after a change is caught by an older checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from eventsourcing.persistence import Notification

from threadline.projections.sql import ViewDatabase

log = logging.getLogger(__name__)

GENESIS = bytes(32)
"""The link before the first event."""

PAGE = 2000
"""Events read and sealed per transaction."""

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS event_chain (position BIGINT PRIMARY KEY, link BYTEA NOT NULL)",
)


def link(previous: bytes, event: Notification) -> bytes:
    """The chain's link of one stored event (every field length-prefixed or fixed-width, so
    no two different events hash the same bytes)."""
    digest = hashlib.sha256(previous)
    digest.update(int(event.id).to_bytes(8, "big"))
    digest.update(str(event.originator_id).encode())
    digest.update(int(event.originator_version).to_bytes(8, "big", signed=True))
    topic = event.topic.encode()
    digest.update(len(topic).to_bytes(4, "big"))
    digest.update(topic)
    state = bytes(event.state)
    digest.update(len(state).to_bytes(8, "big"))
    digest.update(state)
    return digest.digest()


@dataclass(frozen=True)
class ChainReport:
    """What `verify` found: `broken_at` is the first position where the stored events and
    the chain disagree (None: they agree), `reason` says how."""

    checked: int
    sealed_position: int
    unsealed: int
    broken_at: int | None = None
    reason: str = ""
    link: bytes = GENESIS
    """The last link verified (of `sealed_position` when nothing is broken)."""

    @property
    def intact(self) -> bool:
        return self.broken_at is None


class EventChain:
    """The chain of one store: sealing (the follower) and verifying (the auditor)."""

    def __init__(self, store_recorder: Any) -> None:
        self.recorder = store_recorder
        self.db = ViewDatabase(store_recorder)  # `?` parameters on both databases
        self.db.create_schema(SCHEMA)

    def _events(self, start: int, limit: int) -> list[Notification]:
        return list(self.recorder.select_notifications(start=start, limit=limit))

    def head(self) -> tuple[int, bytes]:
        """The last sealed position and its link ((0, GENESIS) before the first seal)."""
        row = self.db.query_one(
            "SELECT position, link FROM event_chain ORDER BY position DESC LIMIT 1"
        )
        if row is None:
            return 0, GENESIS
        return int(row["position"]), bytes(row["link"])

    def seal(self, limit: int | None = None) -> int:
        """Seal the events stored after the last sealed one (at most `limit`); how many."""
        sealed = 0
        position, previous = self.head()
        while limit is None or sealed < limit:
            page = self._events(position + 1, PAGE if limit is None else min(PAGE, limit - sealed))
            if not page:
                break
            rows: list[tuple[int, bytes]] = []
            for event in page:
                previous = link(previous, event)
                rows.append((int(event.id), previous))
            with self.db.transaction() as cur:
                for row in rows:  # a second sealer's rows are the same: the first one wins
                    cur.execute(
                        "INSERT INTO event_chain (position, link) VALUES (?, ?)"
                        " ON CONFLICT (position) DO NOTHING",
                        list(row),
                    )
            position = rows[-1][0]
            sealed += len(rows)
        return sealed

    def _stored(self, upto: int) -> Iterator[Notification]:
        """The stored events in position order, up to `upto`."""
        after = 0
        while True:
            page = self._events(after + 1, PAGE)
            for event in page:
                if int(event.id) > upto:
                    return
                yield event
            if not page:
                return
            after = int(page[-1].id)

    def _links(self) -> Iterator[tuple[int, bytes]]:
        """The chain's rows in position order."""
        after = -1
        while True:
            rows = self.db.query(
                "SELECT position, link FROM event_chain WHERE position > ?"
                " ORDER BY position LIMIT ?",
                [after, PAGE],
            )
            for row in rows:
                yield int(row["position"]), bytes(row["link"])
            if not rows:
                return
            after = int(rows[-1]["position"])

    def _count_after(self, position: int) -> int:
        """How many events are stored after `position` (read a page at a time)."""
        count = 0
        while page := self._events(position + 1, PAGE):
            count += len(page)
            position = int(page[-1].id)
        return count

    def verify(self, progress: Callable[[int, int], None] | None = None) -> ChainReport:
        """Walk the log and the chain side by side from the first event: every sealed event
        must be stored unchanged at its position, and nothing may be stored between sealed
        events that the chain does not cover (the events after the last seal are counted)."""
        sealed_position, _ = self.head()
        total = int(self.recorder.max_notification_id() or 0)
        events, links = self._stored(sealed_position), self._links()
        event, sealed = next(events, None), next(links, None)
        previous, checked = GENESIS, 0

        def broken(position: int, reason: str) -> ChainReport:
            return ChainReport(checked, sealed_position, 0, position, reason, previous)

        while event is not None or sealed is not None:
            if sealed is None or (event is not None and int(event.id) < sealed[0]):
                assert event is not None
                return broken(int(event.id), "stored but never sealed (inserted)")
            if event is None or sealed[0] < int(event.id):
                return broken(sealed[0], "sealed but no longer stored (deleted or moved)")
            previous = link(previous, event)
            if previous != sealed[1]:
                return broken(int(event.id), "changed or reordered since it was sealed")
            checked += 1
            if progress is not None and checked % PAGE == 0:
                progress(checked, total)
            event, sealed = next(events, None), next(links, None)
        if progress is not None:
            progress(checked, total)
        unsealed = self._count_after(sealed_position)
        return ChainReport(checked, sealed_position, unsealed, link=previous)


# -- signed checkpoints ----------------------------------------------------------------------


def load_or_make_key(path: Path) -> Ed25519PrivateKey:
    """The checkpoint signing key (PEM, PKCS8) at `path`; a new one (mode 0600) if absent."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} is not an Ed25519 private key")
        return key
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=False)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return key


def public_hex(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def _signed_part(checkpoint: dict[str, Any]) -> bytes:
    fields = {k: checkpoint[k] for k in ("position", "link", "made_at", "public_key")}
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def make_checkpoint(chain: EventChain, key: Ed25519PrivateKey) -> dict[str, Any]:
    """A signed statement of the chain's last sealed link (seal first, so it covers now)."""
    chain.seal()
    position, last = chain.head()
    checkpoint: dict[str, Any] = {
        "position": position,
        "link": last.hex(),
        "made_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "public_key": public_hex(key.public_key()),
    }
    checkpoint["signature"] = key.sign(_signed_part(checkpoint)).hex()
    return checkpoint


def check_checkpoint(
    chain: EventChain, checkpoint: dict[str, Any], trusted: Iterable[str] = ()
) -> str | None:
    """Why a checkpoint does not hold against the stored events (None: it holds).

    The link at its position is recomputed from the stored events (not read from the chain
    table, which a rewrite would have changed too). `trusted`: public keys (hex) a
    checkpoint must be signed with; without them the key it names is taken at its word."""
    try:
        public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(checkpoint["public_key"]))
        public.verify(bytes.fromhex(checkpoint["signature"]), _signed_part(checkpoint))
    except (KeyError, ValueError, InvalidSignature):
        return "the checkpoint's signature does not verify (the file was changed)"
    keys = list(trusted)
    if keys and checkpoint["public_key"] not in keys:
        return "the checkpoint is signed with a key that is not trusted"
    position = int(checkpoint["position"])
    previous, after = GENESIS, 0
    for event in chain._stored(position):
        previous, after = link(previous, event), int(event.id)
    if after != position or previous.hex() != checkpoint["link"]:
        return f"the log up to position {position} is not what the checkpoint signed"
    return None


# -- the follower ----------------------------------------------------------------------------


class ChainSealer:
    """Seals new events in a background thread: woken by each commit, and every second."""

    def __init__(self, chain: EventChain, interval: float = 1.0) -> None:
        self.chain = chain
        self.interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def notify(self, notification_id: int) -> None:
        self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="threadline-chain", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.chain.seal()
            except Exception:  # the database went away: the next wake tries again
                log.warning("sealing the event chain failed; retrying", exc_info=True)
            self._wake.wait(self.interval)

    def stop(self) -> bool:
        if self._thread is None:
            return False
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)
        self._thread = None
        self.chain.seal()  # what was committed before the stop
        return True
