"""Demo saved segments: "VIP clients", "Silent for 90 days", "Prefers Telegram".

Each is saved once (a second run finds the name taken and leaves it). The filters use the
segment language's newer keys, so the segments screen, a campaign's audience and the
reports' segment picker have something real to show with the demo's deals and messages.
"""

from __future__ import annotations

from threadline.domain.commands.application import Threadline
from threadline.domain.model.errors import Conflict

DEMO_SEGMENTS: tuple[tuple[str, str, list[tuple[str, str]]], ...] = (
    (
        "VIP clients",
        "Class A by revenue over the last 12 months.",
        [("abc_class", "A")],
    ),
    (
        "Silent for 90 days",
        "The last message, either way, was more than 90 days ago.",
        [("last_contact_to", "-90d")],
    ),
    (
        "Prefers Telegram",
        "Most of their messages come through Telegram.",
        [("preferred_channel", "telegram")],
    ),
)


def seed_segments(app: Threadline, actor: str) -> int:
    """Save the demo's segments; returns how many were new."""
    added = 0
    for name, description, pairs in DEMO_SEGMENTS:
        try:
            app.save_segment(name, pairs, actor, description=description)
            added += 1
        except Conflict:
            continue  # an earlier run saved it
    return added
