"""Contract commands: register a contract, change its terms, close it."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID, uuid4

from threadline.domain.commands.base import Commands
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.company import Company
from threadline.domain.model.contact import Contact
from threadline.domain.model.contract import Contract
from threadline.domain.model.deal import Deal
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.money import Money

MAX_NUMBER = 100
MAX_TITLE = 500


def clean_contract_number(value: str) -> str:
    number = " ".join(str(value or "").split())
    if not number or len(number) > MAX_NUMBER:
        raise InvalidInput("number", f"a contract number has 1 to {MAX_NUMBER} characters")
    return number


def check_term(signed_on: date, starts_on: date | None, ends_on: date | None) -> None:
    if ends_on is not None and ends_on < (starts_on or signed_on):
        raise InvalidInput("ends_on", "a contract ends after it starts")


class ContractCommands(Commands):
    def register_contract(
        self,
        number: str,
        signed_on: date,
        actor: str,
        *,
        starts_on: date | None = None,
        ends_on: date | None = None,
        amount: Money | None = None,
        deal_id: UUID | None = None,
        company_id: UUID | None = None,
        contact_id: UUID | None = None,
        title: str = "",
        contract_id: UUID | None = None,
    ) -> Committed[UUID]:
        """A contract with a client (or a supplier); a deal's client is taken when not given."""
        number = clean_contract_number(number)
        check_term(signed_on, starts_on, ends_on)
        if amount is not None and amount.amount < 0:
            raise InvalidInput("amount", "a contract's amount is not negative")
        if len(title) > MAX_TITLE:
            raise InvalidInput("title", f"at most {MAX_TITLE} characters")
        new_id = contract_id or uuid4()

        def command(unit: UnitOfWork) -> UUID:
            if unit.exists(new_id):
                return new_id
            company, contact = company_id, contact_id
            if deal_id is not None:
                deal = unit.get(deal_id, Deal)
                company = company or deal.company_id
                contact = contact or deal.contact_id
            if company is None and contact is None:
                raise InvalidInput("company_id", "a contract needs a company, a contact or a deal")
            if company is not None:
                unit.get(company, Company)
            if contact is not None:
                unit.get(contact, Contact)
            unit.add(
                Contract(
                    id=new_id,
                    number=number,
                    signed_on=signed_on.isoformat(),
                    starts_on=starts_on.isoformat() if starts_on else None,
                    ends_on=ends_on.isoformat() if ends_on else None,
                    amount=amount.rounded().state() if amount is not None else None,
                    deal_id=deal_id,
                    company_id=company,
                    contact_id=contact,
                    personal={"title": " ".join(title.split())},
                    actor=actor,
                    correlation_id=str(new_id),
                )
            )
            return new_id

        return self.writer.submit(command)

    def change_contract(
        self,
        contract_id: UUID,
        actor: str,
        *,
        changes: dict[str, Any],
        title: str | None = None,
    ) -> Committed[None]:
        """`changes`: any of number, signed_on, starts_on, ends_on (ISO dates or None) and
        amount (`Money.state()` or None), already cleaned by the caller."""
        allowed = {"number", "signed_on", "starts_on", "ends_on", "amount"}
        unknown = set(changes) - allowed
        if unknown:
            raise InvalidInput(sorted(unknown)[0], "cannot be changed")
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> None:
            contract = unit.get(contract_id, Contract)
            after = {**vars(contract), **changes}
            check_term(
                date.fromisoformat(after["signed_on"]),
                date.fromisoformat(after["starts_on"]) if after.get("starts_on") else None,
                date.fromisoformat(after["ends_on"]) if after.get("ends_on") else None,
            )
            contract.change(changes, title, actor, correlation_id)

        return self.writer.submit(command)

    def close_contract(self, contract_id: UUID, reason: str, actor: str) -> Committed[None]:
        correlation_id = str(uuid4())

        def command(unit: UnitOfWork) -> None:
            unit.get(contract_id, Contract).close(reason, actor, correlation_id)

        return self.writer.submit(command)
