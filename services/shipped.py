"""What every installation starts with, seeded on start: the three shipped sales pipelines.

A CRM without a pipeline cannot take its first deal, so `serve` and `migrate` create the
shipped funnels that do not exist yet. Their ids are deterministic: seeding again, or from
two processes at once, meets the same aggregates (the loser's conflict is harmless), and a
pipeline a manager has edited is never touched.
"""

from __future__ import annotations

import logging

from threadline.domain.commands.application import Threadline
from threadline.domain.model.errors import Conflict

log = logging.getLogger(__name__)


def seed_shipped(app: Threadline) -> int:
    """Create the missing shipped pipelines; how many were created."""
    try:
        return app.seed_pipelines("system").value
    except Conflict:  # another process seeded them at the same moment
        log.info("shipped pipelines were seeded by another process")
        return 0
