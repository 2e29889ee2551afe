"""Deal commands: open a deal, move it through stages, win or lose it, change its lines.

A move is decided by the target stage's meaning, never by its name: an open stage is a
`DealStageChanged`, a won stage a `DealWon` (and the deal's contact becomes a customer), a
lost stage a `DealLost`, which needs a reason from the pipeline's list.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

from threadline.domain.commands.base import Commands
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.company import Company
from threadline.domain.model.contact import Contact, Lifecycle, survivor
from threadline.domain.model.conversation import Conversation
from threadline.domain.model.deal import MAX_TITLE, Deal, DealLine, clean_line, deal_figures
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.message import Message
from threadline.domain.model.money import DEFAULT_CURRENCY, Money, clean_currency
from threadline.domain.model.pipeline import Pipeline, StageMeaning
from threadline.domain.model.product import Product
from threadline.domain.model.user import User


class Unset:
    """ "Leave as it is" for an optional argument whose None means "clear"."""


UNSET = Unset()


def clean_title(title: str) -> str:
    cleaned = " ".join(str(title or "").split())
    if not cleaned or len(cleaned) > MAX_TITLE:
        raise InvalidInput("title", f"a deal's title has 1 to {MAX_TITLE} characters")
    return cleaned


def clean_date(value: str | date | None, field: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value.isoformat()
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise InvalidInput(field, "expected a date as YYYY-MM-DD") from None


def tax_date(expected_close: str | None) -> date:
    """The day a deal's VAT rates are taken for: its expected close date, else today (UTC)."""
    return date.fromisoformat(expected_close) if expected_close else datetime.now(UTC).date()


def priced_lines(
    unit: UnitOfWork, raw_lines: list[dict[str, Any]], currency: str, on: date
) -> list[DealLine]:
    """Lines from input; a line naming a product takes what it leaves out from the catalogue."""
    lines = []
    for index, raw in enumerate(raw_lines):
        item = dict(raw)
        if item.get("product_id"):
            product = unit.get(UUID(str(item["product_id"])), Product)
            item.setdefault("name", product.name)
            item.setdefault("unit", product.unit)
            item.setdefault("vat", product.vat)
            item.setdefault("vat_included", product.vat_included)
            for key in ("price", "cost"):
                if item.get(key) in (None, ""):
                    money: Money = getattr(product, key)
                    if money.currency != currency:
                        raise InvalidInput(
                            f"lines[{index}].{key}",
                            f"the product's {key} is in {money.currency}, the deal in {currency}:"
                            f" give the {key} in {currency}",
                        )
                    item[key] = str(money.amount)
        lines.append(clean_line(item, index, on))
    return lines


class DealCommands(Commands):
    def create_deal(
        self,
        actor: str,
        title: str,
        pipeline_id: UUID,
        stage_id: str | None = None,
        contact_id: UUID | None = None,
        company_id: UUID | None = None,
        manager_id: UUID | None = None,
        currency: str = DEFAULT_CURRENCY,
        lines: list[dict[str, Any]] | None = None,
        amount: str | None = None,
        expected_close: str | date | None = None,
        source: dict[str, Any] | None = None,
        source_message_id: UUID | None = None,
        conversation_id: UUID | None = None,
        deal_id: UUID | None = None,
    ) -> Committed[UUID]:
        """Open a deal. Without lines, `amount` makes one line (the title, without VAT).

        The deal's source is, first found: `source` as given, the source of the inquiry
        `source_message_id`, the contact's first touch.
        """
        clean = clean_title(title)
        code = clean_currency(currency)
        close = clean_date(expected_close, "expected_close")
        raw_lines = list(lines or [])
        if not raw_lines and amount not in (None, ""):
            raw_lines = [{"name": clean, "quantity": 1, "price": amount, "vat": "none"}]
        if contact_id is None and company_id is None:
            raise InvalidInput("contact_id", "a deal needs a contact or a company")
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> UUID:
            pipeline = unit.get(pipeline_id, Pipeline)
            stage = (
                pipeline.stage(stage_id) if stage_id else pipeline.first_stage(StageMeaning.OPEN)
            )
            if stage.meaning != StageMeaning.OPEN.value:
                raise InvalidInput("stage_id", "a deal starts in an open stage")
            contact = None
            if contact_id is not None:
                contact = survivor(unit.get(contact_id, Contact), lambda i: unit.get(i, Contact))
            company = company_id
            if company is None and contact is not None:
                company = contact.company_id
            elif company is not None:
                unit.get(company, Company)
            if manager_id is not None:
                unit.get(manager_id, User)
            deal_lines = priced_lines(unit, raw_lines, code, tax_date(close))
            figures = deal_figures(deal_lines, code)
            origin = dict(source or {})
            if not origin and source_message_id is not None:
                origin = dict(getattr(unit.get(source_message_id, Message), "source", {}) or {})
            if not origin and contact is not None:
                origin = dict(contact.source)
            deal = unit.add(
                Deal(
                    id=deal_id or uuid4(),
                    pipeline_id=pipeline.id,
                    stage_id=stage.id,
                    contact_id=None if contact is None else contact.id,
                    company_id=company,
                    manager_id=manager_id,
                    currency=code,
                    lines=[line.state() for line in deal_lines],
                    amount=figures.amount.state(),
                    probability=stage.probability,
                    expected_close=close,
                    source=origin,
                    personal={"title": clean},
                    actor=actor,
                    correlation_id=correlation_id,
                )
            )
            if conversation_id is not None:
                unit.get(conversation_id, Conversation)
                deal.link_conversation(conversation_id, actor, correlation_id)
            return deal.id

        return self.writer.submit(command)

    def move_deal(
        self,
        deal_id: UUID,
        stage_id: str,
        actor: str,
        reason: str = "",
        pipeline_id: UUID | None = None,
    ) -> Committed[str]:
        """Move to `stage_id` of the deal's pipeline (or of `pipeline_id`); returns the outcome
        (``moved``, ``won``, ``lost``, ``unchanged``)."""
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> str:
            return move_deal_in(unit, deal_id, stage_id, actor, correlation_id, reason, pipeline_id)

        return self.writer.submit(command)

    def win_deal(self, deal_id: UUID, actor: str, stage_id: str | None = None) -> Committed[None]:
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> None:
            deal = unit.get(deal_id, Deal)
            pipeline = unit.get(deal.pipeline_id, Pipeline)
            stage = pipeline.stage(stage_id) if stage_id else pipeline.first_stage(StageMeaning.WON)
            if stage.meaning != StageMeaning.WON.value:
                raise InvalidInput("stage_id", "not a won stage of the deal's pipeline")
            _win(unit, deal, stage.id, actor, correlation_id)

        return self.writer.submit(command)

    def lose_deal(
        self, deal_id: UUID, reason: str, actor: str, stage_id: str | None = None
    ) -> Committed[None]:
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> None:
            deal = unit.get(deal_id, Deal)
            pipeline = unit.get(deal.pipeline_id, Pipeline)
            stage = (
                pipeline.stage(stage_id) if stage_id else pipeline.first_stage(StageMeaning.LOST)
            )
            if stage.meaning != StageMeaning.LOST.value:
                raise InvalidInput("stage_id", "not a lost stage of the deal's pipeline")
            _lose(pipeline, deal, stage.id, reason, actor, correlation_id)

        return self.writer.submit(command)

    def change_deal_lines(
        self, deal_id: UUID, lines: list[dict[str, Any]], actor: str
    ) -> Committed[None]:
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> None:
            deal = unit.get(deal_id, Deal)
            deal.change_lines(
                priced_lines(unit, lines, deal.currency, tax_date(deal.expected_close)),
                actor,
                correlation_id,
            )

        return self.writer.submit(command)

    def update_deal(
        self,
        deal_id: UUID,
        actor: str,
        title: str | None = None,
        expected_close: str | date | Unset | None = UNSET,
        probability: int | Unset | None = UNSET,
        manager_id: UUID | Unset | None = UNSET,
        contact_id: UUID | Unset | None = UNSET,
        company_id: UUID | Unset | None = UNSET,
    ) -> Committed[None]:
        """Change what is given; `probability=None` goes back to the stage's default."""
        new_title = None if title is None else clean_title(title)
        close = (
            UNSET
            if isinstance(expected_close, Unset)
            else clean_date(expected_close, "expected_close")
        )
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> None:
            deal = unit.get(deal_id, Deal)
            if new_title is not None or not isinstance(close, Unset):
                title_now = deal.title if new_title is None else new_title
                close_now = deal.expected_close if isinstance(close, Unset) else close
                if (title_now, close_now) != (deal.title, deal.expected_close):
                    deal.change_details(
                        {"title": title_now}, close_now, deal.contact_id, actor, correlation_id
                    )
            if not isinstance(probability, Unset):
                stage = unit.get(deal.pipeline_id, Pipeline).stage(deal.stage_id)
                deal.set_probability(probability, stage.probability, actor, correlation_id)
            if not isinstance(manager_id, Unset):
                if manager_id is not None:
                    unit.get(manager_id, User)
                deal.change_manager(manager_id, actor, correlation_id)
            if not isinstance(contact_id, Unset) or not isinstance(company_id, Unset):
                contact = deal.contact_id if isinstance(contact_id, Unset) else contact_id
                company = deal.company_id if isinstance(company_id, Unset) else company_id
                if contact is not None:
                    contact = survivor(
                        unit.get(contact, Contact), lambda i: unit.get(i, Contact)
                    ).id
                if company is not None:
                    unit.get(company, Company)
                deal.change_client(contact, company, actor, correlation_id)

        return self.writer.submit(command)

    def link_deal_conversation(
        self, deal_id: UUID, conversation_id: UUID, actor: str
    ) -> Committed[None]:
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> None:
            unit.get(conversation_id, Conversation)
            unit.get(deal_id, Deal).link_conversation(conversation_id, actor, correlation_id)

        return self.writer.submit(command)


def move_deal_in(
    unit: UnitOfWork,
    deal_id: UUID,
    stage_id: str,
    actor: str,
    correlation_id: str,
    reason: str = "",
    pipeline_id: UUID | None = None,
) -> str:
    """The move of `move_deal` inside a caller's unit of work (a rule's firing moves a deal
    in the same transaction as its record); returns ``moved``, ``won``, ``lost`` or
    ``unchanged``. Every check comes before the first change, so an error leaves the unit
    as it was."""
    deal = unit.get(deal_id, Deal)
    pipeline = unit.get(pipeline_id or deal.pipeline_id, Pipeline)
    stage = pipeline.stage(stage_id)
    if stage.meaning == StageMeaning.WON.value:
        if pipeline.id != deal.pipeline_id:
            raise InvalidInput("stage_id", "move the deal to this pipeline first")
        _win(unit, deal, stage.id, actor, correlation_id)
        return "won"
    if stage.meaning == StageMeaning.LOST.value:
        if pipeline.id != deal.pipeline_id:
            raise InvalidInput("stage_id", "move the deal to this pipeline first")
        _lose(pipeline, deal, stage.id, reason, actor, correlation_id)
        return "lost"
    version = deal.version
    deal.move(pipeline.id, stage.id, stage.probability, actor, correlation_id)
    return "moved" if deal.version != version else "unchanged"


def _win(unit: UnitOfWork, deal: Deal, stage_id: str, actor: str, correlation_id: str) -> None:
    """Win the deal; its contact becomes a customer (a won deal is what makes one)."""
    deal.win(stage_id, actor, correlation_id)
    if deal.contact_id is not None:
        found = unit.find(deal.contact_id, Contact)
        contact = None if found is None else survivor(found, lambda i: unit.get(i, Contact))
        if contact is not None and contact.lifecycle != Lifecycle.CUSTOMER.value:
            contact.change_lifecycle(Lifecycle.CUSTOMER.value, actor, correlation_id)


def _lose(
    pipeline: Pipeline, deal: Deal, stage_id: str, reason: str, actor: str, correlation_id: str
) -> None:
    reason = " ".join(reason.split())
    if not reason:
        raise InvalidInput("reason", "a lost deal needs a reason")
    if pipeline.lost_reasons and reason not in pipeline.lost_reasons:
        raise InvalidInput("reason", f"one of the pipeline's reasons: {pipeline.lost_reasons}")
    deal.lose(stage_id, reason, actor, correlation_id)
