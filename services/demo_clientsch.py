"""Demo history for the channels and clients reports: inbound contacts over past months.

The main demo's clients write once each, now; here a dozen of them come back over the four
months before, each on the channels its identities allow (e-mail, SMS and calls for a phone,
Telegram), so the channels report has shares per client, overall and per month, and the
preferred channel differs between clients. Each message's dedup key is fixed, so running the
demo again adds nothing. Call it while nothing else appends (the history clock is set).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from uuid import UUID

from threadline.domain.model.history_clock import recorded_at
from threadline.domain.model.inbound import InboundMessage
from threadline.services.runtime import Runtime

CLIENTS = 12
SEED = 15
CHANNELS_OF = {"email": ("email",), "phone": ("sms", "voice"), "telegram": ("telegram",)}
TEXTS = (
    "Добрый день! Есть вопрос по заказу.",
    "Когда будет доставка?",
    "Пришлите счёт, пожалуйста.",
)


def seed_inbound_history(runtime: Runtime, now: datetime, clients: list[UUID]) -> int:
    """Inbound messages and calls of demo clients in the last four months; returns how many.

    `clients` are the demo's own clients in plan order: the first `CLIENTS` of them get a
    history, so a second run, a bigger demo, or clients other demos add never change who.
    """
    rng = random.Random(SEED)
    contacts = [{"id": client} for client in clients[:CLIENTS]]
    added = 0
    for contact in contacts:
        card = runtime.queries.contact(str(contact["id"]))
        if card is None:
            continue
        ways = [
            (identity["kind"], identity["value"], channel)
            for identity in card["identities"]
            for channel in CHANNELS_OF.get(identity["kind"], ())
        ]
        if not ways:
            continue
        favourite = rng.choice(ways)
        for k in range(rng.randint(3, 8)):
            kind, value, channel = favourite if rng.random() < 0.6 else rng.choice(ways)
            moment = now - timedelta(days=rng.randint(1, 120), hours=rng.randint(0, 8))
            metadata = (
                {
                    "kind": "call",
                    "call": {"sid": f"demo-{contact['id']}-{k}", "status": "completed"},
                }
                if channel == "voice"
                else {}
            )
            message = InboundMessage.create(
                channel=channel,
                dedup_key=f"demo-clientsch-{contact['id']}-{k}",
                identities=[(kind, value)],
                text="Incoming call" if channel == "voice" else rng.choice(TEXTS),
                metadata=metadata,
            )
            with recorded_at(moment):
                result = runtime.app.ingest(message).value
            if result.duplicate:
                continue
            added += 1
            if channel == "voice" and k % 3 == 0:  # nobody picked up: a missed call
                with recorded_at(moment + timedelta(seconds=30)):
                    runtime.app.record_call_status(result.message_id, "no-answer", "channel:voice")
    return added
