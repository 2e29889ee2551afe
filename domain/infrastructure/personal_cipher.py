"""Crypto-shredding: each event's `personal` part sealed with its contact's own key.

An append-only log cannot delete a client's data when the client asks to be
forgotten (GDPR art. 17, 152-FZ art. 21). So the part of an event that holds it,
`personal`, is stored encrypted (AES-256-GCM) with a key that belongs to that one
contact, and forgetting the contact destroys the key: the events stay, in order,
hashed into the chain as stored, and keep their shape and their public facts (a
message came by e-mail on 3 March; an invoice of 12,000 RUB was paid), while what
they said of the person can no longer be read by anyone.

* **Whose key.** The event's `contact_id`, or, for the Contact aggregate's own
  events, its id (`subject_of`). Personal data of no contact (a marketing-spend
  note, a company's requisites, a segment's name) stays as it was.
* **Where the keys are.** Behind `Keyring` (`threadline.services.contact_keys`: a
  table of the store's database, each key wrapped with the secret key; another
  implementation can ask a KMS). A key is made when its contact's first sealed
  event is stored; the group-commit writer asks for a batch's keys at once.
* **Sealed form.** `personal` becomes `{"_sealed_": base64(nonce + ciphertext),
  "_key_": contact id}`; the associated data binds it to its event (originator id
  and version), so a sealed part moved to another event does not open. A part is
  sealed after the library's transcoding of it and opened before upcasting, so
  upcasters see what the domain wrote.
* **Forgotten.** A part whose key is destroyed reads as `{}`: every view already
  reads `personal` with defaults, so the history keeps its shape without names.
  A new event of a forgotten contact stores no personal part at all.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Hashable, Iterable
from typing import Any, Protocol, cast
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
    find_id_convertor,
)
from eventsourcing.utils import get_topic, resolve_topic

SEALED = "_sealed_"
KEY = "_key_"
CONTACT_TOPIC = "threadline.domain.model.contact:Contact."
NONCE_BYTES = 12


class Keyring(Protocol):
    """The contacts' keys: made on demand, destroyed when a contact is forgotten."""

    def key_for(self, contact_id: UUID, create: bool) -> bytes | None:
        """The contact's key; None when it was destroyed (or never made and not `create`)."""
        ...

    def ensure(self, contact_ids: Iterable[UUID]) -> None:
        """Make the keys the contacts do not have yet, at once (a batch about to be stored)."""
        ...

    def forgotten(self, contact_ids: Iterable[UUID]) -> None:
        """The contacts were forgotten (their `ContactForgotten` was read): drop cached keys."""
        ...

    def destroy(self, contact_ids: Iterable[UUID]) -> int:
        """Destroy the contacts' keys for good; how many there were."""
        ...


def subject_of(topic: str, state: dict[str, Any], originator_id: Any) -> UUID | None:
    """The contact whose key seals this event's personal part, if any."""
    contact = state.get("contact_id")
    if isinstance(contact, UUID):
        return contact
    if topic.startswith(CONTACT_TOPIC) and isinstance(originator_id, UUID):
        return originator_id
    return None


def sealed_contacts(events: Iterable[Any]) -> set[UUID]:
    """The contacts whose keys these events' personal parts will be sealed with."""
    contacts: set[UUID] = set()
    for event in events:
        state = vars(event)
        if state.get("personal"):
            contact = subject_of(get_topic(type(event)), state, state.get("originator_id"))
            if contact is not None:
                contacts.add(contact)
    return contacts


def _associated(originator_id: Any, version: int) -> bytes:
    return f"{originator_id}:{version}".encode()


class PersonalDataMapper(Mapper[UUID]):
    """The library's mapper, sealing and opening `personal` with the keyring (when it has one:
    the runtime gives it; a bare application stores personal parts as they are)."""

    keyring: Keyring | None = None

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        topic = get_topic(domain_event.__class__)
        event_state = dict(vars(domain_event))
        originator_id = event_state.pop("originator_id")
        originator_version = event_state.pop("originator_version")
        class_version = getattr(type(domain_event), "class_version", 1)
        if class_version > 1:
            event_state["class_version"] = class_version
        personal = event_state.get("personal")
        keyring = self.keyring
        if keyring is not None and personal:
            contact = subject_of(topic, event_state, originator_id)
            if contact is not None:
                event_state["personal"] = self._seal(
                    keyring, contact, personal, _associated(originator_id, originator_version)
                )
        stored_state = self.transcoder.encode(event_state)
        if self.compressor:
            stored_state = self.compressor.compress(stored_state)
        if self.cipher:
            stored_state = self.cipher.encrypt(stored_state)
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=topic,
            state=stored_state,
        )

    def _seal(
        self, keyring: Keyring, contact: UUID, personal: dict[str, Any], associated: bytes
    ) -> dict[str, Any]:
        key = keyring.key_for(contact, create=True)
        if key is None:
            return {}  # a forgotten contact: nothing personal is stored any more
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(key).encrypt(nonce, self.transcoder.encode(personal), associated)
        return {SEALED: base64.b64encode(nonce + sealed).decode("ascii"), KEY: str(contact)}

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        cls = resolve_topic(stored_event.topic)
        stored_state = stored_event.state
        try:
            if self.cipher:
                stored_state = self.cipher.decrypt(stored_state)
            if self.compressor:
                stored_state = self.compressor.decompress(stored_state)
            event_state: dict[str, Any] = self.transcoder.decode(stored_state)
        except Exception as error:
            raise MapperDeserialisationError(
                f"Failed to deserialise state of stored event with topic '{stored_event.topic}', "
                f"originator_id '{stored_event.originator_id}' and originator_version "
                f"{stored_event.originator_version}: {error}"
            ) from error
        personal = event_state.get("personal")
        if isinstance(personal, dict) and SEALED in personal:
            event_state["personal"] = self._open(
                personal,
                _associated(stored_event.originator_id, stored_event.originator_version),
            )
        convert = find_id_convertor(cls, cast(Hashable, type(stored_event.originator_id)))
        event_state["originator_id"] = convert(stored_event.originator_id)
        event_state["originator_version"] = stored_event.originator_version
        class_version = getattr(cls, "class_version", 1)
        from_version = event_state.pop("class_version", 1)
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(event_state)
            from_version += 1
        domain_event = object.__new__(cls)
        object.__setattr__(domain_event, "__dict__", event_state)
        if stored_event.topic.endswith(":Contact.ContactForgotten") and self.keyring is not None:
            self.keyring.forgotten([cast(UUID, stored_event.originator_id)])
        return cast(DomainEventProtocol[UUID], domain_event)

    def _open(self, sealed: dict[str, Any], associated: bytes) -> dict[str, Any]:
        """The personal part, or `{}` when its contact's key is gone (forgotten)."""
        keyring = self.keyring
        if keyring is None:
            return {}
        key = keyring.key_for(UUID(str(sealed[KEY])), create=False)
        if key is None:
            return {}
        raw = base64.b64decode(sealed[SEALED])
        try:
            plain = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], associated)
        except InvalidTag:
            raise MapperDeserialisationError(
                "a sealed personal part does not open with its contact's key: it was altered "
                "or moved from another event (`threadline audit verify` shows where)"
            ) from None
        opened: dict[str, Any] = self.transcoder.decode(plain)
        return opened
