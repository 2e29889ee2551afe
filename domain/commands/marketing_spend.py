"""Marketing spend commands: record an entry (one or a file's worth), correct it, remove it.

Entries are checked here (`clean_spend`) whoever records them: the API, the CSV import and
the demo. An import names each entry's id from its content (`imported_spend_id`), so
importing the same file again records nothing twice, and an entry removed after an import
is not brought back by importing the file again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from threadline.domain.commands.base import Commands
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.marketing_spend import MarketingSpend
from threadline.domain.model.money import Money, round_money

MAX_SOURCE = 200
MAX_NOTE = 1000
MAX_DAYS = 3660  # ten years: a longer "period" is a typo
SPEND_NAMESPACE = uuid5(NAMESPACE_URL, "https://threadline.dev/marketing-spend")


@dataclass(frozen=True, slots=True)
class SpendEntry:
    """A checked entry: the source and campaign as keys, the period, the amount, a note."""

    source: str
    utm_campaign: str
    starts_on: date
    ends_on: date
    amount: Money
    note: str = ""

    @property
    def days(self) -> int:
        return (self.ends_on - self.starts_on).days + 1

    def content_key(self) -> str:
        """The entry's content as one text (what an imported entry's id is made of)."""
        return "|".join(
            [
                self.source,
                self.utm_campaign,
                self.starts_on.isoformat(),
                self.ends_on.isoformat(),
                str(self.amount.amount),
                self.amount.currency,
                self.note,
            ]
        )


def _words(value: str | None) -> str:
    return " ".join(str(value or "").split())


def clean_spend(
    source: str,
    utm_campaign: str | None,
    starts_on: date,
    ends_on: date,
    amount: Money,
    note: str = "",
) -> SpendEntry:
    """The entry as stored, or `InvalidInput` naming the field at fault."""
    cleaned_source = _words(source)
    if not cleaned_source:
        raise InvalidInput("source", "must not be empty (a utm_source, a channel or a form)")
    if len(cleaned_source) > MAX_SOURCE:
        raise InvalidInput("source", f"at most {MAX_SOURCE} characters")
    campaign = _words(utm_campaign)
    if len(campaign) > MAX_SOURCE:
        raise InvalidInput("utm_campaign", f"at most {MAX_SOURCE} characters")
    if ends_on < starts_on:
        raise InvalidInput("to", "the period ends before it starts")
    if (ends_on - starts_on).days + 1 > MAX_DAYS:
        raise InvalidInput("to", f"a period of at most {MAX_DAYS} days")
    if amount.amount <= 0:
        raise InvalidInput("amount", "a spend is a positive amount")
    if round_money(amount.amount, amount.currency) != amount.amount:
        raise InvalidInput("amount", f"{amount.currency} has no amounts finer than its minor unit")
    cleaned_note = " ".join(note.split()) if note else ""
    if len(cleaned_note) > MAX_NOTE:
        raise InvalidInput("note", f"at most {MAX_NOTE} characters")
    return SpendEntry(cleaned_source, campaign, starts_on, ends_on, amount, cleaned_note)


def imported_spend_id(entry: SpendEntry, occurrence: int = 0) -> UUID:
    """The id of an imported entry: its content, and which repeat of that content in the
    file it is (two identical rows of one file are two entries; the same file again, none)."""
    return uuid5(SPEND_NAMESPACE, f"{entry.content_key()}#{occurrence}")


def _new_spend(entry: SpendEntry, spend_id: UUID, actor: str) -> MarketingSpend:
    return MarketingSpend(
        id=spend_id,
        source=entry.source,
        utm_campaign=entry.utm_campaign,
        starts_on=entry.starts_on.isoformat(),
        ends_on=entry.ends_on.isoformat(),
        amount=entry.amount.state(),
        personal={"note": entry.note},
        actor=actor,
        correlation_id=str(spend_id),
    )


class MarketingSpendCommands(Commands):
    def record_marketing_spend(
        self, entry: SpendEntry, actor: str, spend_id: UUID | None = None
    ) -> Committed[UUID]:
        """Record one entry; an id recorded before records nothing (an idempotent retry)."""
        new_id = spend_id or uuid4()

        def command(unit: UnitOfWork) -> UUID:
            if not unit.exists(new_id):
                unit.add(_new_spend(entry, new_id, actor))
            return new_id

        return self.writer.submit(command)

    def import_marketing_spend(
        self, entries: Sequence[tuple[UUID, SpendEntry]], actor: str
    ) -> Committed[int]:
        """Record every entry whose id is not in the log yet, in one transaction; returns
        how many were recorded."""

        def command(unit: UnitOfWork) -> int:
            unit.prefetch([spend_id for spend_id, _ in entries])
            recorded = 0
            for spend_id, entry in entries:
                if unit.exists(spend_id):
                    continue
                unit.add(_new_spend(entry, spend_id, actor))
                recorded += 1
            return recorded

        return self.writer.submit(command)

    def correct_marketing_spend(
        self, spend_id: UUID, entry: SpendEntry, actor: str
    ) -> Committed[bool]:
        """Make the entry say `entry`; True when something changed (409 once removed)."""
        correlation_id = str(uuid4())
        changes = {
            "source": entry.source,
            "utm_campaign": entry.utm_campaign,
            "starts_on": entry.starts_on.isoformat(),
            "ends_on": entry.ends_on.isoformat(),
            "amount": entry.amount.state(),
        }

        def command(unit: UnitOfWork) -> bool:
            spend = unit.get(spend_id, MarketingSpend)
            return spend.correct(changes, entry.note, actor, correlation_id)

        return self.writer.submit(command)

    def remove_marketing_spend(self, spend_id: UUID, actor: str) -> Committed[None]:
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> None:
            unit.get(spend_id, MarketingSpend).remove(actor, correlation_id)

        return self.writer.submit(command)
