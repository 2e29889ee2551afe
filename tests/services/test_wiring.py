"""Wiring by constructor: no component the runtime builds can reach the runtime back.

`services.components.build_components` hands each component narrow parts (the
app, view readers, `wait_for_views`, stores). A component that kept the runtime
(an attribute, a bound method of it, a closure over it) would be a service
locator again; this walks what each component holds and fails on the runtime.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import FunctionType, MethodType
from typing import Any

from tests.test_import_graph import GRAPH
from threadline.services.runtime import Runtime

DEPTH = 4  # component -> its parts -> their parts ...: a back-pointer would show within a few


def _held(value: Any) -> Iterator[Any]:
    """What an object holds: its attributes, a bound method's object, a closure's cells."""
    if isinstance(value, MethodType):
        yield value.__self__
        yield value.__func__
        return
    if isinstance(value, FunctionType):
        for cell in value.__closure__ or ():
            try:
                yield cell.cell_contents
            except ValueError:  # an empty cell
                continue
        return
    if isinstance(value, dict):
        yield from value.values()
        return
    if isinstance(value, list | tuple | set | frozenset):
        yield from value
        return
    attributes = getattr(value, "__dict__", None)
    if isinstance(attributes, dict):
        yield from attributes.values()
    for name in getattr(type(value), "__slots__", ()):
        if hasattr(value, name):
            yield getattr(value, name)


def _path_to_runtime(start: Any, name: str) -> list[str] | None:
    """The chain of types from `start` to a `Runtime`, if one is reachable within `DEPTH`."""
    seen: set[int] = set()
    frontier: list[tuple[Any, list[str]]] = [(start, [name])]
    for _ in range(DEPTH):
        following = []
        for value, path in frontier:
            for held in _held(value):
                if isinstance(held, Runtime):
                    return [*path, "Runtime"]
                if id(held) in seen or isinstance(held, str | bytes | int | float | bool):
                    continue
                seen.add(id(held))
                following.append((held, [*path, type(held).__name__]))
        frontier = following
    return None


def test_no_component_holds_the_runtime(sqlite_runtime: Runtime) -> None:
    runtime = sqlite_runtime
    components: dict[str, Any] = {
        "channels": runtime.channels,
        "triggers": runtime.triggers,
        "composer": runtime.composer,
        "unsubscribe": runtime.unsubscribe,
        "attachment_access": runtime.attachment_access,
    }
    workers = runtime.channels.workers()
    components.update({type(worker).__name__: worker for worker in workers})
    assert {"DeliveryWorker", "WebhookWorker", "NotificationMailer", "CampaignSender"} <= set(
        components
    )
    back_pointers = {
        name: path
        for name, component in components.items()
        if (path := _path_to_runtime(component, name)) is not None
    }
    assert not back_pointers, back_pointers
    # the guard itself: a closure over the runtime is found
    assert _path_to_runtime(lambda: runtime.app, "closure") == ["closure", "Runtime"]


def test_the_composer_is_shared_by_rules_and_campaigns(sqlite_runtime: Runtime) -> None:
    """One daily limit: the trigger runner and the campaign sender hold the same composer."""
    runtime = sqlite_runtime
    [sender] = [w for w in runtime.channels.workers() if type(w).__name__ == "CampaignSender"]
    assert sender.composer is runtime.composer
    assert _path_holds(runtime.triggers, runtime.composer)


def _path_holds(start: Any, wanted: Any) -> bool:
    seen: set[int] = set()
    frontier = [start]
    for _ in range(DEPTH):
        following = []
        for value in frontier:
            for held in _held(value):
                if held is wanted:
                    return True
                if id(held) not in seen:
                    seen.add(id(held))
                    following.append(held)
        frontier = following
    return False


def test_the_views_process_imports_neither_channels_nor_rules_nor_credentials() -> None:
    """`views_child_main` opens the log and the views only; its module cannot reach more."""
    reached: set[str] = set()
    stack = ["threadline.services.view_stack"]
    while stack:
        module = stack.pop()
        for target in GRAPH[module]:
            if target not in reached:
                reached.add(target)
                stack.append(target)
    # (the settings parse the webhook allow-list with `triggers.destinations`: a parser only)
    unwanted = {
        m
        for m in reached
        if m.startswith(
            (
                "threadline.channels",
                "threadline.triggers.runner",
                "threadline.triggers.outbound",
                "threadline.triggers.actions",
                "threadline.services.channel_hub",
                "threadline.services.credentials",
                "threadline.services.runtime",
                "threadline.services.components",
            )
        )
    }
    assert not unwanted, sorted(unwanted)


def test_workers_are_made_afresh_for_each_start(sqlite_runtime: Runtime) -> None:
    first, second = sqlite_runtime.channels.workers(), sqlite_runtime.channels.workers()
    assert all(a is not b for a, b in zip(first, second, strict=True))
    assert all(asyncio.iscoroutinefunction(w.run) for w in first)


def test_every_view_of_the_projections_package_is_built_and_followed() -> None:
    """A view class left out of `PROJECTION_CLASSES` has no tables and is never updated: its
    readers fail with "no such table" only when a page first asks (the pipelines view did)."""
    import importlib
    import pkgutil

    import threadline.projections as package
    from threadline.projections.base import ViewProjection
    from threadline.services.view_stack import PROJECTION_CLASSES

    declared = set()
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"{package.__name__}.{info.name}")
        declared |= {
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, ViewProjection)
            and value is not ViewProjection
            and value.__module__ == module.__name__
        }
    assert declared - set(PROJECTION_CLASSES) == set()
    assert len({cls.name for cls in PROJECTION_CLASSES}) == len(PROJECTION_CLASSES)
