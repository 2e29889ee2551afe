"""The Deal aggregate: a sale led through a pipeline's stages, with its lines, money and outcome.

Every stage change is an event carrying where from, where to, who, and the amount and win
probability at that moment, so time in stage and the funnel are folds of the log rather than
guesses from where deals sit now. Winning and losing are their own events (`DealWon`,
`DealLost` with a required reason). Every event names the deal's contact, so the deal's
history joins the client's, and a later partitioning by contact keeps a deal's events in order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from threadline.domain.model.errors import Conflict, InvalidInput
from threadline.domain.model.history_clock import HistoryClock
from threadline.domain.model.money import Money, clean_currency, to_decimal
from threadline.domain.model.vat import LineFigures, clean_vat_kind, price_line, vat_rate

MAX_LINES = 500
MAX_TITLE = 300


class DealStatus(StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


@dataclass(frozen=True, slots=True)
class DealLine:
    """One line item, priced in the deal's currency.

    `vat_rate` is the rate the line was priced at (None: without VAT); it is resolved from
    `vat` (the kind) and the deal's tax date when the line is saved, and stored, so the
    line's figures never change afterwards.
    """

    id: str
    name: str
    quantity: Decimal
    price: Decimal
    cost: Decimal = Decimal(0)
    discount: Decimal = Decimal(0)  # percent
    vat: str = "none"
    vat_rate: Decimal | None = None
    vat_included: bool = True
    unit: str = ""
    product_id: str | None = None

    def figures(self, currency: str) -> LineFigures:
        return price_line(
            quantity=self.quantity,
            price=self.price,
            cost=self.cost,
            discount_percent=self.discount,
            vat_rate_percent=self.vat_rate,
            vat_included=self.vat_included,
            currency=currency,
        )

    def state(self) -> dict[str, Any]:
        """Plain JSON: decimals as strings."""
        state = asdict(self)
        for key in ("quantity", "price", "cost", "discount"):
            state[key] = str(state[key])
        state["vat_rate"] = None if self.vat_rate is None else str(self.vat_rate)
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> DealLine:
        rate = state.get("vat_rate")
        return cls(
            id=str(state["id"]),
            name=str(state["name"]),
            quantity=Decimal(str(state["quantity"])),
            price=Decimal(str(state["price"])),
            cost=Decimal(str(state.get("cost", "0"))),
            discount=Decimal(str(state.get("discount", "0"))),
            vat=str(state.get("vat", "none")),
            vat_rate=None if rate is None else Decimal(str(rate)),
            vat_included=bool(state.get("vat_included", True)),
            unit=str(state.get("unit", "")),
            product_id=state.get("product_id"),
        )


def clean_line(raw: dict[str, Any], index: int, tax_date: date) -> DealLine:
    """A line from input: numbers checked, the VAT rate resolved for `tax_date`."""
    here = f"lines[{index}]"
    name = " ".join(str(raw.get("name") or "").split())
    if not name or len(name) > 500:
        raise InvalidInput(f"{here}.name", "a line needs a name of up to 500 characters")
    quantity = to_decimal(raw.get("quantity", 1), f"{here}.quantity")
    if quantity == 0:
        raise InvalidInput(f"{here}.quantity", "must not be zero (negative for a refund)")
    price = to_decimal(raw.get("price"), f"{here}.price")
    cost = to_decimal(raw.get("cost", 0) or 0, f"{here}.cost")
    discount = to_decimal(raw.get("discount", 0) or 0, f"{here}.discount")
    if price < 0 or cost < 0:
        raise InvalidInput(f"{here}.price", "prices and costs are not negative (refund: quantity)")
    if not Decimal(0) <= discount <= Decimal(100):
        raise InvalidInput(f"{here}.discount", "a discount is 0 to 100 percent")
    kind = clean_vat_kind(str(raw.get("vat") or "none"), f"{here}.vat")
    product = raw.get("product_id")
    return DealLine(
        id=str(raw.get("id") or f"line-{index + 1}"),
        name=name,
        quantity=quantity,
        price=price,
        cost=cost,
        discount=discount,
        vat=kind.value,
        vat_rate=vat_rate(kind, tax_date),
        vat_included=bool(raw.get("vat_included", True)),
        unit=str(raw.get("unit") or "")[:20],
        product_id=str(product) if product else None,
    )


@dataclass(frozen=True, slots=True)
class DealFigures:
    """A deal's totals: sums of its rounded lines."""

    currency: str
    net: Decimal
    vat: Decimal
    total: Decimal
    cost: Decimal
    profit: Decimal

    @property
    def amount(self) -> Money:
        return Money(self.total, self.currency)


def deal_figures(lines: list[DealLine], currency: str) -> DealFigures:
    figures = [line.figures(currency) for line in lines]
    zero = Decimal(0)
    return DealFigures(
        currency,
        sum((f.net for f in figures), zero),
        sum((f.vat for f in figures), zero),
        sum((f.total for f in figures), zero),
        sum((f.cost for f in figures), zero),
        sum((f.profit for f in figures), zero),
    )


def lines_from_state(states: list[dict[str, Any]]) -> list[DealLine]:
    return [DealLine.from_state(s) for s in states]


def unique_line_ids(lines: list[DealLine]) -> list[DealLine]:
    """Lines whose ids are unique (a repeated or missing id is numbered by position)."""
    seen: set[str] = set()
    result = []
    for index, line in enumerate(lines):
        if line.id in seen:
            line = replace(line, id=f"line-{index + 1}")
        seen.add(line.id)
        result.append(line)
    return result


class Deal(Aggregate):
    """A sale. A closed deal (won or lost) refuses line changes until it is reopened by a move
    to an open stage; a lost deal always has a reason."""

    class DealCreated(HistoryClock, Aggregate.Created):
        pipeline_id: UUID
        stage_id: str
        contact_id: UUID | None
        company_id: UUID | None
        manager_id: UUID | None
        currency: str
        lines: list[dict[str, Any]]
        amount: dict[str, str]
        probability: int
        expected_close: str | None
        source: dict[str, Any]
        personal: dict[str, Any]
        actor: str
        correlation_id: str

    @event(DealCreated)
    def __init__(
        self,
        id: UUID,
        pipeline_id: UUID,
        stage_id: str,
        contact_id: UUID | None,
        company_id: UUID | None,
        manager_id: UUID | None,
        currency: str,
        lines: list[dict[str, Any]],
        amount: dict[str, str],
        probability: int,
        expected_close: str | None,
        source: dict[str, Any],
        personal: dict[str, Any],
        actor: str,
        correlation_id: str,
    ) -> None:
        self.pipeline_id = pipeline_id
        self.stage_id = stage_id
        self.status = DealStatus.OPEN.value
        self.contact_id = contact_id
        self.company_id = company_id
        self.manager_id = manager_id
        self.currency = clean_currency(currency)
        self.lines = lines_from_state(lines)
        self.probability = probability
        self.probability_manual = False
        self.expected_close = expected_close
        self.source = dict(source)
        self.title: str = str(personal.get("title", ""))
        self.conversation_ids: list[UUID] = []

    @property
    def figures(self) -> DealFigures:
        return deal_figures(self.lines, self.currency)

    @property
    def is_open(self) -> bool:
        return self.status == DealStatus.OPEN.value

    def _refuse_if_closed(self, what: str) -> None:
        if not self.is_open:
            raise Conflict(f"deal {self.id} is {self.status}: reopen it before changing {what}")

    # -- moves ---------------------------------------------------------------------------------

    class DealStageChanged(HistoryClock, Aggregate.Event):
        """A move to an open stage (possibly of another pipeline, possibly reopening the deal)."""

        pipeline_id: UUID
        from_stage_id: str
        to_stage_id: str
        amount: dict[str, str]
        probability: int
        contact_id: UUID | None
        actor: str
        correlation_id: str

    def move(
        self,
        pipeline_id: UUID,
        stage_id: str,
        default_probability: int,
        actor: str,
        correlation_id: str,
    ) -> None:
        if stage_id == self.stage_id and pipeline_id == self.pipeline_id and self.is_open:
            return
        probability = self.probability if self.probability_manual else default_probability
        self._stage_changed(
            pipeline_id,
            self.stage_id,
            stage_id,
            self.figures.amount.state(),
            probability,
            self.contact_id,
            actor,
            correlation_id,
        )

    @event(DealStageChanged)
    def _stage_changed(
        self,
        pipeline_id: UUID,
        from_stage_id: str,
        to_stage_id: str,
        amount: dict[str, str],
        probability: int,
        contact_id: UUID | None,
        actor: str,
        correlation_id: str,
    ) -> None:
        self.pipeline_id = pipeline_id
        self.stage_id = to_stage_id
        self.status = DealStatus.OPEN.value
        self.probability = probability

    class DealWon(HistoryClock, Aggregate.Event):
        pipeline_id: UUID
        from_stage_id: str
        to_stage_id: str
        amount: dict[str, str]
        contact_id: UUID | None
        actor: str
        correlation_id: str

    def win(self, stage_id: str, actor: str, correlation_id: str) -> None:
        if self.status == DealStatus.WON.value:
            raise Conflict(f"deal {self.id} is already won")
        self._won(
            self.pipeline_id,
            self.stage_id,
            stage_id,
            self.figures.amount.state(),
            self.contact_id,
            actor,
            correlation_id,
        )

    @event(DealWon)
    def _won(
        self,
        pipeline_id: UUID,
        from_stage_id: str,
        to_stage_id: str,
        amount: dict[str, str],
        contact_id: UUID | None,
        actor: str,
        correlation_id: str,
    ) -> None:
        self.stage_id = to_stage_id
        self.status = DealStatus.WON.value
        self.probability = 100

    class DealLost(HistoryClock, Aggregate.Event):
        pipeline_id: UUID
        from_stage_id: str
        to_stage_id: str
        reason: str
        amount: dict[str, str]
        contact_id: UUID | None
        actor: str
        correlation_id: str

    def lose(self, stage_id: str, reason: str, actor: str, correlation_id: str) -> None:
        if self.status == DealStatus.LOST.value:
            raise Conflict(f"deal {self.id} is already lost")
        if not reason.strip():
            raise InvalidInput("reason", "a lost deal needs a reason")
        self._lost(
            self.pipeline_id,
            self.stage_id,
            stage_id,
            reason.strip(),
            self.figures.amount.state(),
            self.contact_id,
            actor,
            correlation_id,
        )

    @event(DealLost)
    def _lost(
        self,
        pipeline_id: UUID,
        from_stage_id: str,
        to_stage_id: str,
        reason: str,
        amount: dict[str, str],
        contact_id: UUID | None,
        actor: str,
        correlation_id: str,
    ) -> None:
        self.stage_id = to_stage_id
        self.status = DealStatus.LOST.value
        self.probability = 0

    # -- contents ------------------------------------------------------------------------------

    class DealLinesChanged(HistoryClock, Aggregate.Event):
        lines: list[dict[str, Any]]
        amount: dict[str, str]
        contact_id: UUID | None
        actor: str
        correlation_id: str

    def change_lines(self, lines: list[DealLine], actor: str, correlation_id: str) -> None:
        self._refuse_if_closed("its lines")
        if len(lines) > MAX_LINES:
            raise InvalidInput("lines", f"at most {MAX_LINES} lines")
        lines = unique_line_ids(lines)
        amount = deal_figures(lines, self.currency).amount.state()
        self._lines_changed(
            [x.state() for x in lines], amount, self.contact_id, actor, correlation_id
        )

    @event(DealLinesChanged)
    def _lines_changed(
        self,
        lines: list[dict[str, Any]],
        amount: dict[str, str],
        contact_id: UUID | None,
        actor: str,
        correlation_id: str,
    ) -> None:
        self.lines = lines_from_state(lines)

    class DealDetailsChanged(HistoryClock, Aggregate.Event):
        """The title (personal: it often names the client) or the expected close date."""

        personal: dict[str, Any]
        expected_close: str | None
        contact_id: UUID | None
        actor: str
        correlation_id: str

    @event(DealDetailsChanged)
    def change_details(
        self,
        personal: dict[str, Any],
        expected_close: str | None,
        contact_id: UUID | None,
        actor: str,
        correlation_id: str,
    ) -> None:
        self.title = str(personal.get("title", self.title))
        self.expected_close = expected_close

    class DealProbabilitySet(HistoryClock, Aggregate.Event):
        """A manager's own estimate (`manual`), or back to the stage's default."""

        probability: int
        manual: bool
        contact_id: UUID | None
        actor: str
        correlation_id: str

    def set_probability(
        self, probability: int | None, default: int, actor: str, correlation_id: str
    ) -> None:
        self._refuse_if_closed("its probability")
        if probability is not None and not 0 <= probability <= 100:
            raise InvalidInput("probability", "a probability is 0 to 100 percent")
        manual = probability is not None
        value = probability if probability is not None else default
        self._probability_set(value, manual, self.contact_id, actor, correlation_id)

    @event(DealProbabilitySet)
    def _probability_set(
        self,
        probability: int,
        manual: bool,
        contact_id: UUID | None,
        actor: str,
        correlation_id: str,
    ) -> None:
        self.probability = probability
        self.probability_manual = manual

    class DealManagerChanged(HistoryClock, Aggregate.Event):
        manager_id: UUID | None
        contact_id: UUID | None
        actor: str
        correlation_id: str

    def change_manager(self, manager_id: UUID | None, actor: str, correlation_id: str) -> None:
        if manager_id != self.manager_id:
            self._manager_changed(manager_id, self.contact_id, actor, correlation_id)

    @event(DealManagerChanged)
    def _manager_changed(
        self, manager_id: UUID | None, contact_id: UUID | None, actor: str, correlation_id: str
    ) -> None:
        self.manager_id = manager_id

    class DealClientChanged(HistoryClock, Aggregate.Event):
        """The deal's contact and / or company (a merged contact's deals follow the survivor)."""

        contact_id: UUID | None
        company_id: UUID | None
        previous_contact_id: UUID | None
        actor: str
        correlation_id: str

    def change_client(
        self, contact_id: UUID | None, company_id: UUID | None, actor: str, correlation_id: str
    ) -> None:
        if contact_id is None and company_id is None:
            raise InvalidInput("contact_id", "a deal needs a contact or a company")
        if (contact_id, company_id) != (self.contact_id, self.company_id):
            self._client_changed(contact_id, company_id, self.contact_id, actor, correlation_id)

    @event(DealClientChanged)
    def _client_changed(
        self,
        contact_id: UUID | None,
        company_id: UUID | None,
        previous_contact_id: UUID | None,
        actor: str,
        correlation_id: str,
    ) -> None:
        self.contact_id = contact_id
        self.company_id = company_id

    class DealConversationLinked(HistoryClock, Aggregate.Event):
        conversation_id: UUID
        contact_id: UUID | None
        actor: str
        correlation_id: str

    def link_conversation(self, conversation_id: UUID, actor: str, correlation_id: str) -> None:
        if conversation_id not in self.conversation_ids:
            self._conversation_linked(conversation_id, self.contact_id, actor, correlation_id)

    @event(DealConversationLinked)
    def _conversation_linked(
        self, conversation_id: UUID, contact_id: UUID | None, actor: str, correlation_id: str
    ) -> None:
        self.conversation_ids.append(conversation_id)
