"""Old topics keep resolving after the domain was split into model, commands and infrastructure.

Every stored event names its class by topic (``module:Class.Event``), and a log never forgets:
events written before the split say ``threadline.domain.user:User.Created`` where the class now
lives in ``threadline.domain.model.user``. The library's `register_topic` maps each old module name
to its new module, so those events still load.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from eventsourcing.utils import register_topic

# old module (before issue 12) -> where its aggregates and events live now. Only modules whose
# classes stored events name: importing them here costs nothing (the application imports them
# anyway), while the application and the PostgreSQL recorder would pull in more than a process
# needs (the recorder: psycopg, in every SQLite process too).
MOVED_MODULES: dict[str, str] = {
    "threadline.domain.attributes": "threadline.domain.model.attributes",
    "threadline.domain.automation": "threadline.domain.model.automation",
    "threadline.domain.calendar": "threadline.domain.model.calendar",
    "threadline.domain.campaign": "threadline.domain.model.campaign",
    "threadline.domain.company": "threadline.domain.model.company",
    "threadline.domain.contact": "threadline.domain.model.contact",
    "threadline.domain.conversation": "threadline.domain.model.conversation",
    "threadline.domain.form": "threadline.domain.model.form",
    "threadline.domain.identity_claim": "threadline.domain.model.identity_claim",
    "threadline.domain.inbox": "threadline.domain.model.inbox",
    "threadline.domain.message": "threadline.domain.model.message",
    "threadline.domain.rule": "threadline.domain.model.rule",
    "threadline.domain.task": "threadline.domain.model.task",
    "threadline.domain.template": "threadline.domain.model.template",
    "threadline.domain.user": "threadline.domain.model.user",
}


def register_moved_modules() -> None:
    """Let every old module topic resolve to the module that holds its classes now."""
    for old, new in MOVED_MODULES.items():
        module: ModuleType = importlib.import_module(new)
        register_topic(old, module)
