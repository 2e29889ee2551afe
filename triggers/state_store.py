"""Where the trigger runner keeps its own small state: its log position, scan marks, turns."""

from __future__ import annotations

from typing import Protocol


class StateStore(Protocol):
    """A durable key-value store (the state database's `state` table in the services)."""

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str) -> None: ...
