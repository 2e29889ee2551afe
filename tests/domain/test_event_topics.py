"""Every event topic in stored logs keeps resolving to the same event of the same aggregate.

A stored event names its class by topic (``module:Aggregate.EventClass``) and the log is never
rewritten, so a renamed or moved event class would make old events unreadable. The list in
``event_topics.txt`` was taken from the model before the event classes were declared explicitly
(issue 12); it may grow, never shrink.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
from eventsourcing.domain import Aggregate, CanMutateAggregate
from eventsourcing.utils import get_topic, resolve_topic

import threadline.domain.model as model
from threadline.domain.infrastructure.moved_topics import register_moved_modules

TOPICS_FILE = Path(__file__).with_name("event_topics.txt")
STORED_TOPICS = [line for line in TOPICS_FILE.read_text().splitlines() if line.strip()]


def current_topics() -> set[str]:
    """The topic of every event class nested in an aggregate of ``threadline.domain.model``."""
    topics: set[str] = set()
    for info in pkgutil.iter_modules(model.__path__):
        module = importlib.import_module(f"{model.__name__}.{info.name}")
        for aggregate in vars(module).values():
            if not (
                inspect.isclass(aggregate)
                and issubclass(aggregate, Aggregate)
                and aggregate.__module__ == module.__name__
            ):
                continue
            for name in dir(aggregate):
                member = getattr(aggregate, name)
                if (
                    inspect.isclass(member)
                    and issubclass(member, CanMutateAggregate)
                    and member.__qualname__.startswith(f"{aggregate.__qualname__}.")
                ):
                    topics.add(get_topic(member))
    return topics


@pytest.mark.parametrize("topic", STORED_TOPICS)
def test_a_stored_topic_resolves_to_the_same_event_of_the_same_aggregate(topic: str) -> None:
    register_moved_modules()
    module_name, qualname = topic.split(":")
    aggregate_name, event_name = qualname.rsplit(".", 1)
    cls = resolve_topic(topic)
    assert inspect.isclass(cls) and issubclass(cls, CanMutateAggregate)
    assert cls.__name__ == event_name
    assert cls.__qualname__ == qualname
    aggregate = resolve_topic(f"{module_name}:{aggregate_name}")
    assert inspect.isclass(aggregate) and issubclass(aggregate, Aggregate)
    assert getattr(aggregate, event_name) is cls
    # consumers match on the aggregate's base event (`isinstance(event, Rule.Event)`)
    assert issubclass(cls, aggregate.Event)


def test_every_stored_topic_is_still_declared() -> None:
    missing = sorted(set(STORED_TOPICS) - current_topics())
    assert not missing, f"event classes gone or renamed: {missing}"
