"""Ids and keys derived from personal values, computed so that nobody can confirm a guess.

Several aggregate ids are derived from what a client is or wrote: an identity
claim's from the address (so two writers claiming one address collide in the
store), an inbound message's from the provider's dedup key (so a redelivery is a
duplicate), a conversation's from its thread key (a Message-ID, a Telegram chat,
a subject and an address). With a public derivation (`uuid5`) anyone holding a
copy of the log could test "was anna@example.com ever a client?" by computing
the id and looking for it, even after that client was forgotten. So a store
created by this release derives them with HMAC-SHA256 under a secret
*pseudonym key* kept outside the log (in the state database, encrypted with the
secret key: `threadline.services.pseudonym_key`). A store whose log began
before the key existed keeps `uuid5` ids (the *legacy* scheme): ids cannot be
upcast, and changing them would split every contact and thread in two.

The scheme is process-wide, like the clock: the runtime installs its store's
pseudonyms at start (`install`), and the domain's id functions read them
(`current`). Until a runtime installs one, the legacy scheme applies (pure
domain tests, tools that never open a store).
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from dataclasses import dataclass, field
from uuid import UUID, uuid5

KEYED = "keyed"
LEGACY = "legacy"
_CHECK_TEXT = b"threadline pseudonym key check"
DIGEST_PREFIX = "h:"  # a digest in an event says it is one, so nobody takes it for the value


@dataclass(frozen=True, eq=False)
class Pseudonyms:
    """How a store turns personal values into ids and digests (`KEYED` or `LEGACY`)."""

    scheme: str
    key: bytes = b""
    _ids: dict[tuple[UUID, str], UUID] = field(default_factory=dict, repr=False)

    @classmethod
    def keyed(cls, key: bytes) -> Pseudonyms:
        if len(key) < 32:
            raise ValueError("a pseudonym key has at least 32 bytes")
        return cls(KEYED, key)

    @classmethod
    def legacy(cls) -> Pseudonyms:
        return cls(LEGACY)

    def uuid(self, namespace: UUID, text: str) -> UUID:
        """The id of `text` in `namespace`: keyed, HMAC-SHA256 (version-4 bits, so it reads
        like any random id); legacy, `uuid5`. Cached: ingest asks for each id several times."""
        cache_key = (namespace, text)
        found = self._ids.get(cache_key)
        if found is not None:
            return found
        if self.scheme == KEYED:
            digest = hmac.new(self.key, namespace.bytes + text.encode(), hashlib.sha256).digest()
            found = UUID(bytes=digest[:16], version=4)
        else:
            found = uuid5(namespace, text)
        if len(self._ids) > 65_536:
            self._ids.clear()
        self._ids[cache_key] = found
        return found

    def digest(self, text: str) -> str:
        """A stand-in for a personal key in an event's public part (a thread key, a dedup
        key): equal keys give equal digests, and without the key nobody can test a guess.
        The legacy scheme digests with plain SHA-256 (its ids are guessable anyway)."""
        if self.scheme == KEYED:
            value = hmac.new(self.key, b"digest:" + text.encode(), hashlib.sha256).hexdigest()
        else:
            value = hashlib.sha256(text.encode()).hexdigest()
        return DIGEST_PREFIX + value[:32]

    def check(self) -> str:
        """A value that shows which key a log was written with and says nothing about it."""
        if self.scheme != KEYED:
            return ""
        return hmac.new(self.key, _CHECK_TEXT, hashlib.sha256).hexdigest()


_lock = threading.Lock()
_current = Pseudonyms.legacy()


def install(pseudonyms: Pseudonyms) -> None:
    """Make `pseudonyms` the process's scheme (a runtime does this when it opens its store)."""
    global _current
    with _lock:
        _current = pseudonyms


def current() -> Pseudonyms:
    return _current


def pseudonymous_id(namespace: UUID, text: str) -> UUID:
    """The id of a personal value under the installed scheme."""
    return _current.uuid(namespace, text)


def digest(text: str) -> str:
    """The digest of a personal key under the installed scheme."""
    return _current.digest(text)
