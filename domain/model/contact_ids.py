"""Where a new contact's id comes from: random, or from a pool whose keys already exist.

Each contact's personal data is sealed with a key of its own
(`threadline.domain.infrastructure.personal_cipher`), and a key must be stored before
the first event it seals. Making the key when the contact's first event is stored
costs a write transaction per batch of new contacts; instead the runtime's keyring
stores keys for a few hundred ids at a time and hands those ids to new contacts
(`install`). Until a runtime installs a pool (pure domain tests), ids are random.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID, uuid4

_source: Callable[[], UUID] = uuid4


def install(source: Callable[[], UUID]) -> None:
    """Take new contacts' ids from `source` (the process's keyring pool) from now on."""
    global _source
    _source = source


def new_contact_id() -> UUID:
    return _source()
