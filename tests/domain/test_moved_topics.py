"""Events stored before the domain was split (issue 12) still load: their old topics resolve."""

from __future__ import annotations

import dataclasses
import importlib
import inspect

import pytest
from eventsourcing.utils import resolve_topic

from threadline.domain.commands.application import Threadline
from threadline.domain.infrastructure.moved_topics import MOVED_MODULES


@pytest.mark.parametrize(("old", "new"), sorted(MOVED_MODULES.items()))
def test_every_class_of_a_moved_module_resolves_by_its_old_topic(old: str, new: str) -> None:
    module = importlib.import_module(new)
    classes = [
        value
        for value in vars(module).values()
        if inspect.isclass(value) and value.__module__ == new
    ]
    assert classes, f"{new} defines no class"
    for cls in classes:
        assert resolve_topic(f"{old}:{cls.__qualname__}") is cls


def test_an_event_stored_under_the_old_topic_is_read_back() -> None:
    app = Threadline(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    user_id = app.create_user("old@example.com", "operator", actor="cli").value[0]
    recorder = app.recorder
    stored = recorder.select_events(user_id)
    old_topic = stored[0].topic.replace("threadline.domain.model.user", "threadline.domain.user")
    assert old_topic != stored[0].topic
    # as an event written by a release before the split
    event = app.mapper.to_domain_event(dataclasses.replace(stored[0], topic=old_topic))
    assert type(event).__module__ == "threadline.domain.model.user"
    assert event.originator_id == user_id
