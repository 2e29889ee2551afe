"""Events as an earlier release stored them, for the upcaster tests.

An event class at version 2 writes ``class_version: 2``; the first release wrote none
(which the library reads as version 1) and lacked the fields added since.
"""

from __future__ import annotations

import json
from typing import Any

from eventsourcing.application import Application
from eventsourcing.persistence import StoredEvent


def stored_as_version_1(
    app: Application, event: Any, *dropped: str, replaced: dict[str, Any] | None = None
) -> StoredEvent:
    """`event` stored as version 1 wrote it: no class_version, none of the `dropped` fields,
    and the `replaced` fields with the values version 1 wrote (a float where money is now)."""
    return stored_as_version(app, event, 1, *dropped, replaced=replaced)


def stored_as_version(
    app: Application,
    event: Any,
    version: int,
    *dropped: str,
    replaced: dict[str, Any] | None = None,
) -> StoredEvent:
    """`event` as release `version` of its class stored it (version 1 wrote no
    `class_version`), without the `dropped` fields and with the `replaced` values."""
    stored = app.mapper.to_stored_event(event)
    state = json.loads(stored.state)
    assert state.pop("class_version") > version
    if version > 1:
        state["class_version"] = version
    for name in dropped:
        del state[name]
    state.update(replaced or {})
    return StoredEvent(
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=json.dumps(state).encode(),
    )


def as_version_1(
    app: Application, event: Any, *dropped: str, replaced: dict[str, Any] | None = None
) -> Any:
    """`event` as version 1 stored it, read back through the mapper (and so the upcasters)."""
    return app.mapper.to_domain_event(stored_as_version_1(app, event, *dropped, replaced=replaced))
