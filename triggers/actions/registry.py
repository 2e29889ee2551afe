"""Which rule actions exist: every module of this package registers its action when imported.

Modules are found on disk, so a new action is one new module and nothing else; `base`
and this module hold no action.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from threadline.triggers.actions import base
from threadline.triggers.actions.base import ACTIONS, RuleAction

_NOT_ACTIONS = frozenset({"base", "registry"})


@cache
def load_actions() -> dict[str, type[RuleAction]]:
    """Import every action module once and return the action classes by kind."""
    package = base.__name__.rpartition(".")[0]
    path = importlib.import_module(package).__path__
    for module in sorted(info.name for info in pkgutil.iter_modules(path)):
        if module not in _NOT_ACTIONS:
            importlib.import_module(f"{package}.{module}")
    return dict(ACTIONS)


def action_class(kind: str) -> type[RuleAction] | None:
    return load_actions().get(kind)
