"""Demo money flow: our company, suppliers, documents, contracts, payments, supplier orders.

The sales demo (services/demo_sales.py) ends in deals; a manager's next questions are about
paper and money: which invoices went out, what was paid, what is overdue, which contract
runs out, what was ordered from suppliers. So `seed_documents` gives the demo:

* our own company (role "own") and the Russian clients with requisites whose check digits
  pass (`domain.model.requisites`), so documents print them and bank payments find the
  payer by ИНН;
* three suppliers with a contact each, and the catalogue's goods linked to them;
* documents of every kind on the demo's deals, rendered to PDF by the real document service,
  and contracts (one runs out within 30 days, so the shipped reminder has something to say);
* supplier orders from a won deal, sent by e-mail, one of them confirmed;
* a 1C client-bank statement (``kl_to_1c.txt``, Windows-1251) written from the invoices and
  imported through the ordinary import, so the payments screen shows a real import: a full
  payment, a partial one, a near miss waiting for a person, an unknown payer, a payment to a
  supplier and the bank's fee.

The rules are the rest of the demo's:

* Planned from what is recorded: the deals (their ids, clients and dates come from the
  sales demo's seeded plan) and, for the statement, the issued invoices as stored. A second
  run plans the same statement byte for byte, so its payments have the same ids.
* Idempotent: document, contract and message ids are ``uuid5`` of a key, and one that exists
  is skipped before anything is rendered; companies are found by name, supplier contacts by
  their e-mail's claim; updates record only what differs; the import skips payments it has.
* History: documents, orders and payments take their own day's moment through
  `history_clock.recorded_at`, in date order, so numbers rise with dates.
"""

# The demo is half Russian on purpose: Cyrillic letters that look Latin are not a mistake here.
# ruff: noqa: RUF001

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from threadline.domain.commands.application import Threadline
from threadline.domain.model.attributes import AttributeDefinition, AttributeScope, AttributeType
from threadline.domain.model.deal import Deal
from threadline.domain.model.document import DocumentKind
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.history_clock import recorded_at
from threadline.domain.model.identities import identity_claim_id
from threadline.domain.model.identity_claim import IdentityClaim
from threadline.domain.model.product import Product
from threadline.domain.model.supplier_order import SupplierOrderState
from threadline.projections import deals as deal_views
from threadline.projections import documents as document_views
from threadline.projections import supplier_orders as order_views
from threadline.projections.deals import DealRow
from threadline.projections.documents import DocumentFilter, DocumentRow
from threadline.projections.supplier_orders import SupplierOrderFilter
from threadline.services.demo_sales import DEALS_PER_PIPELINE, demo_deal_id
from threadline.services.documents.issuing import (
    IssueRequest,
    issue_document,
    send_document_to_client,
)
from threadline.services.payments.client_bank_exchange import (
    AccountSpec,
    DocumentSpec,
    write_statement,
)
from threadline.services.payments.statement_import import apply_import
from threadline.services.runtime import Runtime

NAMESPACE = uuid5(NAMESPACE_URL, "https://threadline.dev/demo-money-flow")
DEAL_LOOKUP = sum(DEALS_PER_PIPELINE.values()) + 3  # the plan's deals and December 2025's three
INVOICE_DAYS = 5
"""An invoice is due five days after it is issued."""
PROPOSAL_DAYS = 14
PROPOSAL_NOTES = {
    "ru": "Поставка в течение 5 рабочих дней после оплаты. Доставка по Москве бесплатно.",
    "en": "Delivery within 5 working days of payment; shipping is quoted separately.",
}
ORDER_DEALS = 2
"""Won deals whose goods are ordered from suppliers: the first one's first order is confirmed
and paid, the rest wait for the suppliers' answer."""


def demo_id(key: str) -> UUID:
    """The id of the demo's document, contract or message named `key`: the same every run."""
    return uuid5(NAMESPACE, key)


# -- requisites whose check digits pass ------------------------------------------------------

_INN10 = (2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN11 = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
_INN12 = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)


def _check(digits: str, weights: Sequence[int]) -> str:
    return str(sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11 % 10)


def company_inn(body: str) -> str:
    """A 10-digit ИНН: nine digits and the Tax Service's check digit."""
    return body + _check(body, _INN10)


def person_inn(body: str) -> str:
    """A 12-digit ИНН (a sole trader's): ten digits and the two check digits."""
    first = body + _check(body, _INN11)
    return first + _check(first, _INN12)


def company_ogrn(body: str) -> str:
    """A 13-digit ОГРН: twelve digits and the remainder modulo 11 (its last digit)."""
    return body + str(int(body) % 11 % 10)


def settlement_account(bik: str, body: str) -> str:
    """A 20-digit account at the bank `bik`: `body` (19 digits) with the Central Bank's key
    put in as the 9th digit, so that the bank's 3 digits and the account, weighted 7, 1, 3,
    sum to a multiple of 10 (the key's weight is 3, and 3 * 7 = 21 = 1 modulo 10)."""
    account = body[:8] + "0" + body[8:]
    weights = (7, 1, 3) * 8
    total = sum(int(d) * w for d, w in zip(bik[-3:] + account, weights, strict=False))
    key = (-total * 7) % 10
    return body[:8] + str(key) + body[8:]


@dataclass(frozen=True)
class Bank:
    name: str
    bik: str
    correspondent_account: str


SBER = Bank("ПАО Сбербанк", "044525225", "30101810400000000225")
TBANK = Bank('АО "ТБанк"', "044525974", "30101810145250000974")
ALFA = Bank('АО "Альфа-Банк"', "044525593", "30101810200000000593")
SBER_INN = "7707083893"
"""The bank's own ИНН: the payee of its fees."""


@dataclass(frozen=True)
class Party:
    """A demo counterparty with its requisites (one set, one account)."""

    name: str
    inn_body: str  # 9 digits (a company) or 10 (a sole trader); the check digits are added
    kpp: str
    ogrn_body: str
    address: str
    bank: Bank
    account_body: str  # 19 digits; the key is added
    signatory: str = ""
    accountant: str = ""
    email: str = ""
    phone: str = ""

    @property
    def inn(self) -> str:
        return company_inn(self.inn_body) if len(self.inn_body) == 9 else person_inn(self.inn_body)

    @property
    def account(self) -> str:
        return settlement_account(self.bank.bik, self.account_body)

    def requisites(self) -> list[dict[str, Any]]:
        return [
            {
                "inn": self.inn,
                "kpp": self.kpp,
                "ogrn": company_ogrn(self.ogrn_body),
                "legal_address": self.address,
                "postal_address": self.address,
                "bank_accounts": [
                    {
                        "bank_name": self.bank.name,
                        "bik": self.bank.bik,
                        "account": self.account,
                        "correspondent_account": self.bank.correspondent_account,
                    }
                ],
            }
        ]

    def attributes(self) -> dict[str, Any]:
        values = {
            "signatory": self.signatory,
            "accountant": self.accountant,
            "email": self.email,
            "phone": self.phone,
        }
        return {key: value for key, value in values.items() if value}


OWN = Party(
    'ООО "Тредлайн Трейд"',
    "772841590",
    "772801001",
    "117774632018",
    "117342, г. Москва, ул. Профсоюзная, д. 65, к. 1, офис 412",
    SBER,
    "4070281033800001234",
    signatory="Генеральный директор Орлов А. В.",
    accountant="Белова Н. С.",
    email="billing@threadline.example",
    phone="+7 495 120-45-67",
)
CLIENTS: dict[str, Party] = {
    'ООО "Ромашка"': Party(
        'ООО "Ромашка"',
        "771503218",
        "771501001",
        "115774610293",
        "127238, г. Москва, Дмитровское ш., д. 71, стр. 2",
        TBANK,
        "4070281011000004471",
        signatory="Генеральный директор Лебедева Е. А.",
    ),
    'АО "СеверСталь-Логистик"': Party(
        'АО "СеверСталь-Логистик"',
        "352801463",
        "352801001",
        "103350010741",
        "162608, Вологодская обл., г. Череповец, ул. Металлургов, д. 14",
        SBER,
        "4070281075200000318",
        signatory="Директор по логистике Козлов П. Н.",
    ),
    'ООО "ТехноПарк"': Party(
        'ООО "ТехноПарк"',
        "781045127",
        "781001001",
        "118784730544",
        "196084, г. Санкт-Петербург, Московский пр., д. 97, лит. А",
        ALFA,
        "4070281020000005893",
        signatory="Генеральный директор Новиков С. И.",
    ),
    'ООО "Уральский завод металлоконструкций"': Party(
        'ООО "Уральский завод металлоконструкций"',
        "667904512",
        "667901001",
        "106665804211",
        "620017, г. Екатеринбург, пр. Космонавтов, д. 18",
        SBER,
        "4070281091620000711",
        signatory="Директор Попов Д. М.",
    ),
}
"""The Russian demo companies (services/demo.py) with requisites; the English ones have none."""


@dataclass(frozen=True)
class Supplier:
    party: Party
    contact_name: str
    skus: tuple[str, ...]


SUPPLIERS: tuple[Supplier, ...] = (
    Supplier(
        Party(
            'ООО "СкладМаш"',
            "502413876",
            "502401001",
            "115502410087",
            "141009, Московская обл., г. Мытищи, ул. Колпакова, д. 2",
            SBER,
            "4070281064000018802",
            signatory="Генеральный директор Фролов В. К.",
            email="orders@skladmash.example",
        ),
        "Виктор Фролов",
        ("DEMO-RACK-200", "DEMO-TRUCK-25", "DEMO-EXPORT-RACK"),
    ),
    Supplier(
        Party(
            'ООО "ПакТорг"',
            "773125490",
            "773101001",
            "117746280315",
            "121357, г. Москва, ул. Верейская, д. 17",
            ALFA,
            "4070281030000009412",
            signatory="Директор Семёнова О. Л.",
            email="sales@paktorg.example",
        ),
        "Ольга Семёнова",
        ("DEMO-FILM-500", "DEMO-BOX-604", "DEMO-LABEL-58", "DEMO-GLOVE-100"),
    ),
    Supplier(
        Party(
            'ООО "СканТех"',
            "784203317",
            "784201001",
            "116784715620",
            "195220, г. Санкт-Петербург, Гражданский пр., д. 11",
            TBANK,
            "4070281021000002276",
            signatory="Генеральный директор Ким А. Р.",
            email="zakaz@scantech.example",
        ),
        "Андрей Ким",
        ("DEMO-SCAN-30", "DEMO-PRINT-4"),
    ),
)
UNKNOWN_PAYER = Party(
    "ИП Кравцов Дмитрий Олегович",
    "5031086472",
    "",
    "",
    "",
    TBANK,
    "4080281070000031958",
)
"""A payer the CRM does not know: his payment stays unmatched."""

COMPANY_ATTRIBUTES: tuple[AttributeDefinition, ...] = (
    AttributeDefinition(
        "signatory", "Signatory", AttributeType.TEXT, personal=True, scope=AttributeScope.COMPANY
    ),
    AttributeDefinition(
        "accountant", "Accountant", AttributeType.TEXT, personal=True, scope=AttributeScope.COMPANY
    ),
    AttributeDefinition("email", "E-mail", AttributeType.TEXT, scope=AttributeScope.COMPANY),
    AttributeDefinition("phone", "Phone", AttributeType.TEXT, scope=AttributeScope.COMPANY),
)
"""What documents print from a company's attributes (services/documents/context.py)."""


# -- the summary ------------------------------------------------------------------------------


@dataclass
class MoneySummary:
    """What this run added of the money-flow demo (all zeros the second time)."""

    documents: int = 0
    contracts: int = 0
    supplier_orders: int = 0
    payments: int = 0


# -- companies, suppliers, products -----------------------------------------------------------


@dataclass
class _Ctx:
    """What the steps share: the runtime, the moment of the run, who acts, the summary."""

    runtime: Runtime
    now: datetime
    actor: str
    companies: dict[str, UUID]
    summary: MoneySummary = field(default_factory=MoneySummary)

    @property
    def app(self) -> Threadline:
        return self.runtime.app

    @property
    def today(self) -> date:
        return self.now.date()

    def moment(self, day: date, minutes: int = 0) -> datetime:
        """A working-hours moment of `day` (never later than a minute ago)."""
        at = datetime.combine(day, time(10, 0), tzinfo=UTC) + timedelta(minutes=minutes)
        return min(at, self.now - timedelta(minutes=1))

    def sync(self) -> None:
        """Let the views show everything recorded so far: when they run in another process
        (`threadline serve`) a short wait may not be enough, and the runner catches up here."""
        target = self.app.recorder.max_notification_id()
        if not self.runtime.wait_for_views(target):
            self.runtime.runner.catch_up()


def ensure_company_attributes(app: Threadline, actor: str) -> None:
    """Define the company attributes documents print, leaving existing definitions alone."""
    registry = app.attribute_registry()
    existing = set(registry.definitions) if registry is not None else set()
    for definition in COMPANY_ATTRIBUTES:
        if f"{definition.scope}:{definition.key}" not in existing:
            app.define_attribute(definition, actor)


def ensure_party(ctx: _Ctx, party: Party, roles: list[str] | None) -> UUID:
    """The company named like `party`, made or brought up to date (only changes are recorded)."""
    company_id = ctx.companies.get(party.name)
    if company_id is None:
        company_id = ctx.app.create_company(ctx.actor, party.name).value
        ctx.companies[party.name] = company_id
    ctx.app.update_company(
        company_id,
        ctx.actor,
        roles=roles,
        legal_form="company",
        requisites=party.requisites(),
        attributes=party.attributes() or None,
    )
    return company_id


def ensure_supplier_contact(ctx: _Ctx, supplier: Supplier, company_id: UUID) -> UUID:
    """The supplier's sales contact, found by the claim on their e-mail (the log's index)."""
    email = supplier.party.email.lower()
    claim_id = identity_claim_id("email", email)
    owner = None
    if claim_id in ctx.app.repository:
        claim: IdentityClaim = ctx.app.repository.get(claim_id)
        owner = claim.owner_id  # None: released, its contact forgotten
    if owner is not None:
        contact_id = owner
    else:
        contact_id = ctx.app.create_contact(
            ctx.actor, supplier.contact_name, identities=[("email", email)], lifecycle="customer"
        ).value
    ctx.app.update_contact(contact_id, ctx.actor, company_id=company_id)
    return contact_id


def link_products(ctx: _Ctx, catalogue: dict[str, UUID], suppliers: dict[str, UUID]) -> None:
    """Each supplied SKU of the catalogue points at its supplier (only a change is recorded)."""
    for supplier in SUPPLIERS:
        for sku in supplier.skus:
            if sku in catalogue:
                ctx.app.update_product(
                    catalogue[sku], ctx.actor, {"supplier_id": suppliers[supplier.party.name]}
                )


# -- the plan ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedDocument:
    """One document to issue; a contract document has `contract_ends`: the contract it prints
    is registered under its number, running until then."""

    key: str
    kind: DocumentKind
    issued_on: date
    deal: DealRow | None = None
    language: str = "ru"
    due_on: date | None = None
    valid_until: date | None = None
    supplier_order_id: UUID | None = None
    contract_ends: date | None = None
    notes: str = ""

    @property
    def document_id(self) -> UUID:
        return demo_id(f"document:{self.key}")

    @property
    def contract_id(self) -> UUID:
        return demo_id(f"contract:{self.key}")


def _day(stamp: str) -> date:
    return datetime.fromisoformat(stamp).date()


def _closed(row: DealRow) -> date:
    return _day(row.closed_at or row.updated_at)


def demo_deals(runtime: Runtime) -> list[DealRow]:
    """The sales demo's deals that exist, in their plan's order."""
    found = (deal_views.deal(runtime.views, demo_deal_id(n)) for n in range(DEAL_LOOKUP))
    return [row for row in found if row is not None]


@dataclass(frozen=True)
class DealRoles:
    """Which demo deals carry which documents (empty when a small demo has none such)."""

    won: list[DealRow]  # won, in roubles, for a client with requisites
    open: list[DealRow]  # open, likewise, the oldest first
    foreign: DealRow | None  # a dollar deal, documents in English


def deal_roles(deals: list[DealRow], with_requisites: set[str]) -> DealRoles:
    def fits(row: DealRow, status: str) -> bool:
        return row.status == status and row.currency == "RUB" and row.company_id in with_requisites

    won = [row for row in deals if fits(row, "won")]
    still_open = sorted((row for row in deals if fits(row, "open")), key=lambda r: r.created_at)
    foreign = next((r for r in deals if r.currency != "RUB" and r.status != "lost"), None)
    return DealRoles(won[:3], still_open[:2], foreign)


def plan_documents(roles: DealRoles, today: date) -> list[PlannedDocument]:
    """Every kind, on the deals that fit it, dated from the deals' own days, in date order.

    A won deal: its contract and invoice a few days before it was won (the client paid
    them), the act or УПД on the day; an open deal: a proposal, a price protocol and an
    invoice that is overdue, and a proposal with an invoice not yet due; a dollar deal:
    a proposal and an invoice in English. Purchase orders are planned with their orders.
    """
    planned: list[PlannedDocument] = []

    def add(key: str, kind: DocumentKind, row: DealRow, day: date, **extra: Any) -> None:
        day = min(day, today)
        if kind is DocumentKind.INVOICE:
            extra.setdefault("due_on", day + timedelta(days=INVOICE_DAYS))
        if kind is DocumentKind.PROPOSAL:
            extra.setdefault("valid_until", day + timedelta(days=PROPOSAL_DAYS))
            extra.setdefault("notes", PROPOSAL_NOTES[extra.get("language", "ru")])
        planned.append(PlannedDocument(f"{row.id}:{key}", kind, day, row, **extra))

    for index, row in enumerate(roles.won):
        closed = _closed(row)
        invoiced = max(_day(row.created_at), closed - timedelta(days=6))
        if index < 2:
            ends = (
                invoiced + timedelta(days=365) if index == 0 else today + timedelta(days=18)
            )  # the second one runs out within the reminder's 30 days
            add("contract", DocumentKind.CONTRACT, row, invoiced, contract_ends=ends)
        if index == 0:
            add("specification", DocumentKind.SPECIFICATION, row, invoiced)
        add("invoice", DocumentKind.INVOICE, row, invoiced)
        closing = DocumentKind.UPD if index != 1 else DocumentKind.ACT
        add(closing.value, closing, row, closed)
    for index, row in enumerate(roles.open):
        created = _day(row.created_at)
        add("proposal", DocumentKind.PROPOSAL, row, created + timedelta(days=1))
        if index == 0:
            add("price_protocol", DocumentKind.PRICE_PROTOCOL, row, created + timedelta(days=2))
        back = (12, 2)[index]  # the first invoice is a week overdue, the second not yet due
        invoiced = max(created + timedelta(days=2), today - timedelta(days=back))
        add("invoice", DocumentKind.INVOICE, row, invoiced)
    if roles.foreign is not None:
        row = roles.foreign
        created = _day(row.created_at)
        add("proposal", DocumentKind.PROPOSAL, row, created + timedelta(days=1), language="en")
        add("invoice", DocumentKind.INVOICE, row, created + timedelta(days=3), language="en")
    return planned


def _sort_key(item: PlannedDocument) -> tuple[date, int]:
    order = (
        DocumentKind.PROPOSAL,
        DocumentKind.PRICE_PROTOCOL,
        DocumentKind.CONTRACT,
        DocumentKind.SPECIFICATION,
        DocumentKind.PURCHASE_ORDER,
        DocumentKind.INVOICE,
        DocumentKind.UPD,
        DocumentKind.ACT,
    )
    return item.issued_on, order.index(item.kind)


# -- applying it ------------------------------------------------------------------------------


def _issue(ctx: _Ctx, item: PlannedDocument, seq: int) -> None:
    """Issue one planned document (and register the contract it prints), unless it exists."""
    if item.document_id in ctx.app.repository:
        return
    request = IssueRequest(
        kind=item.kind.value,
        deal_id=UUID(item.deal.id) if item.deal and item.supplier_order_id is None else None,
        supplier_order_id=item.supplier_order_id,
        language=item.language,
        issued_on=item.issued_on,
        due_on=item.due_on,
        valid_until=item.valid_until,
        notes=item.notes,
        document_id=item.document_id,
    )
    with recorded_at(ctx.moment(item.issued_on, seq)):
        issue_document(ctx.runtime, request, ctx.actor)
        ctx.summary.documents += 1
        if item.contract_ends is not None and item.deal is not None:
            _register_contract(ctx, item)


def _register_contract(ctx: _Ctx, item: PlannedDocument) -> None:
    """The contract a contract document prints, under the document's number and date, so
    the invoices and acts after it name it as their basis."""
    assert item.deal is not None and item.contract_ends is not None
    ctx.sync()
    row = document_views.document(ctx.runtime.views, item.document_id)
    assert row is not None, "the views have caught up with the document"
    ctx.app.register_contract(
        row.display_number,
        item.issued_on,
        ctx.actor,
        starts_on=item.issued_on,
        ends_on=item.contract_ends,
        amount=row.total,
        deal_id=UUID(item.deal.id),
        title=f"Договор поставки: {item.deal.title}"[:500],
        contract_id=item.contract_id,
    )
    ctx.sync()  # the documents issued next take the deal's contract from the views
    ctx.summary.contracts += 1


@dataclass(frozen=True)
class PlannedOrder:
    order_id: UUID
    deal: DealRow
    issued_on: date


def seed_supplier_orders(ctx: _Ctx, deals: list[DealRow]) -> list[PlannedOrder]:
    """Orders to the suppliers of the first `ORDER_DEALS` won deals with supplied goods, each
    made on the day its deal was won, the earliest first (so their numbers rise with the
    days); an earlier run's orders are found in the views."""
    chosen = [
        row
        for row in deals
        if row.status == "won" and row.currency == "RUB" and _has_supplied_goods(ctx, row)
    ][:ORDER_DEALS]
    orders: list[PlannedOrder] = []
    for row in sorted(chosen, key=_closed):
        day = _closed(row)
        existing, _ = order_views.supplier_orders_page(
            ctx.runtime.views, SupplierOrderFilter(deal_id=row.id)
        )
        if existing:
            order_ids = [UUID(o.id) for o in sorted(existing, key=lambda o: o.number)]
        else:
            with recorded_at(ctx.moment(day)):
                order_ids = ctx.app.create_supplier_orders(
                    UUID(row.id), ctx.actor, day
                ).value.order_ids
            ctx.summary.supplier_orders += len(order_ids)
        orders += [PlannedOrder(order_id, row, day) for order_id in order_ids]
    ctx.sync()
    return orders


def _has_supplied_goods(ctx: _Ctx, row: DealRow) -> bool:
    deal: Deal = ctx.app.repository.get(UUID(row.id))
    for line in deal.lines:
        if line.product_id is not None:
            product: Product = ctx.app.repository.get(UUID(line.product_id))
            if product.supplier_id is not None:
                return True
    return False


def send_orders(ctx: _Ctx, orders: list[PlannedOrder], contacts: dict[str, UUID]) -> None:
    """E-mail each order's purchase order to its supplier the day after; the supplier of the
    first one confirms it with a delivery date two days later."""
    views = ctx.runtime.views
    for index, order in enumerate(orders):
        row = order_views.supplier_order(views, order.order_id)
        if row is None:
            continue
        document_id = demo_id(f"document:{order.order_id}:purchase_order")
        if row.state == SupplierOrderState.DRAFT.value:
            with recorded_at(ctx.moment(min(order.issued_on + timedelta(days=1), ctx.today))):
                ctx.app.send_supplier_order(
                    order.order_id,
                    document_id,
                    contacts[row.supplier_id],
                    f"Добрый день! Направляем заказ № {row.display_number}. "
                    "Просим подтвердить наличие и срок поставки.",
                    ctx.actor,
                    message_id=demo_id(f"order-sent:{order.order_id}"),
                )
            ctx.sync()
        if index == 0 and row.state in (SupplierOrderState.DRAFT, SupplierOrderState.SENT):
            with recorded_at(ctx.moment(min(order.issued_on + timedelta(days=3), ctx.today))):
                ctx.app.change_supplier_order_state(
                    order.order_id,
                    SupplierOrderState.CONFIRMED,
                    ctx.actor,
                    expected_on=order.issued_on + timedelta(days=10),
                    note="Поставщик подтвердил заказ и срок отгрузки.",
                )
            ctx.sync()


def send_an_invoice(ctx: _Ctx, roles: DealRoles) -> None:
    """One won deal's invoice goes to the client as a manager sends it from the deal page: the
    first whose client has an e-mail address, else a Telegram chat (none: nothing is sent)."""
    ids = [demo_id(f"document:{row.id}:invoice") for row in roles.won]
    if any(demo_id(f"invoice-sent:{i}") in ctx.app.repository for i in ids):
        return
    for channel in ("email", "telegram"):
        for document_id in ids:
            row = document_views.document(ctx.runtime.views, document_id)
            if row is None:
                continue
            try:
                with recorded_at(ctx.moment(date.fromisoformat(row.issued_on), 90)):
                    send_document_to_client(
                        ctx.runtime,
                        document_id,
                        channel,
                        "",
                        ctx.actor,
                        message_id=demo_id(f"invoice-sent:{document_id}"),
                    )
                return
            except InvalidInput:  # the client has no address on this channel
                continue


# -- the bank statement -----------------------------------------------------------------------

OPENING_BALANCE = Decimal("1250000.00")
FEE = Decimal("1490.00")
UNKNOWN_AMOUNT = Decimal("48500.00")


def near_miss_number(number: int, taken: set[int]) -> int:
    """What a payer's accountant types instead of `number`: the last two digits swapped, or
    one digit too many (never a number the payer really has: that would be a match, not a
    near miss). ValueError when every such typo is taken."""
    text = str(number)
    candidates = []
    if len(text) >= 2 and text[-1] != text[-2]:
        candidates.append(text[:-2] + text[-1] + text[-2])
    candidates += [text[:i] + d + text[i:] for i in range(len(text), -1, -1) for d in "1734062589"]
    for candidate in candidates:
        value = int(candidate)
        if not candidate.startswith("0") and value != number and value not in taken:
            return value
    raise ValueError(f"every one-typo neighbour of {number} is a real number")


def _rub(minor: int) -> Decimal:
    return (Decimal(minor) / 100).quantize(Decimal("0.01"))


def _vat_words(minor: int) -> str:
    return f"В т.ч. НДС {_rub(minor)} руб." if minor else "НДС не облагается."


def _from(party: Party, **fields: Any) -> DocumentSpec:
    return DocumentSpec(
        counterparty_name=party.name,
        counterparty_inn=party.inn,
        counterparty_kpp=party.kpp,
        counterparty_account=party.account,
        counterparty_bank=party.bank.name,
        counterparty_bik=party.bank.bik,
        counterparty_corr_account=party.bank.correspondent_account,
        **fields,
    )


def plan_statement(ctx: _Ctx, roles: DealRoles, orders: list[PlannedOrder]) -> list[DocumentSpec]:
    """The statement's payments, from the invoices and orders as stored (so every run writes
    the same file): the first won deal's invoice paid in full, the second's 40 %, the third's
    in full under a mistyped number; a payer the CRM does not know; the first order paid to
    its supplier; the bank's fee."""
    views = ctx.runtime.views
    parties = {str(ctx.companies[n]): p for n, p in CLIENTS.items() if n in ctx.companies}
    specs: list[DocumentSpec] = []
    for index, deal in enumerate(roles.won):
        invoice = document_views.document(views, demo_id(f"document:{deal.id}:invoice"))
        party = parties.get(str(invoice.company_id)) if invoice else None
        if invoice is None or party is None:
            continue
        issued = date.fromisoformat(invoice.issued_on)
        paid_on = min(issued + timedelta(days=3), _closed(deal))
        amount, vat, shown = invoice.total_minor, invoice.vat_minor, invoice.display_number
        if index == 0:
            purpose = f"Оплата по счету № {shown} от {issued:%d.%m.%Y} за товары. "
        elif index == 1:
            amount, vat = amount * 2 // 5, vat * 2 // 5
            purpose = f"Частичная оплата (аванс 40%) по счету {shown} от {issued:%d.%m.%Y}. "
        else:
            taken = {d.number for d in _invoices_of(ctx, invoice.company_id)}
            typo = near_miss_number(invoice.number, taken)
            shown = f"{invoice.series}-{typo}" if invoice.series else str(typo)
            purpose = f"Оплата по счету № {shown} от {issued:%d.%m.%Y} за товары. "
        specs.append(
            _from(
                party,
                number=str(300 + 17 * index + invoice.number),
                date=paid_on,
                amount=_rub(amount),
                direction="in",
                purpose=purpose + _vat_words(vat),
            )
        )
    if orders:
        order = order_views.supplier_order(views, orders[0].order_id)
        supplier = next(
            (
                s
                for s in SUPPLIERS
                if order and ctx.companies.get(s.party.name) == UUID(order.supplier_id)
            ),
            None,
        )
        if order is not None and supplier is not None:
            specs.append(
                _from(
                    supplier.party,
                    number=str(1000 + order.number),
                    date=orders[0].issued_on,
                    amount=_rub(order.amount_minor),
                    direction="out",
                    purpose=f"Оплата по заказу № {order.display_number} "
                    f"от {orders[0].issued_on:%d.%m.%Y}, в т.ч. НДС.",
                )
            )
    if not specs:
        return []
    last = max(spec.date for spec in specs)
    specs.append(
        _from(
            UNKNOWN_PAYER,
            number="57",
            date=last,
            amount=UNKNOWN_AMOUNT,
            direction="in",
            purpose="Оплата за консультационные услуги по договору 17/К. НДС не облагается.",
        )
    )
    specs.append(
        DocumentSpec(
            number="9021",
            date=last,
            amount=FEE,
            direction="out",
            counterparty_name=SBER.name,
            counterparty_inn=SBER_INN,
            counterparty_kpp="773601001",
            counterparty_account=settlement_account(SBER.bik, "7060181003800000001"),
            counterparty_bank=SBER.name,
            counterparty_bik=SBER.bik,
            counterparty_corr_account=SBER.correspondent_account,
            purpose=f"Комиссия за ведение счета за {last:%m.%Y}. НДС не облагается.",
            kind="Банковский ордер",
        )
    )
    return sorted(specs, key=lambda spec: spec.date)


def _invoices_of(ctx: _Ctx, company_id: str | None) -> list[DocumentRow]:
    rows, _ = document_views.documents_page(
        ctx.runtime.views, DocumentFilter(kind="invoice", company_id=company_id), limit=1000
    )
    return rows


def own_account() -> AccountSpec:
    return AccountSpec(
        account=OWN.account,
        opening_balance=OPENING_BALANCE,
        owner_name=OWN.name,
        owner_inn=OWN.inn,
        owner_kpp=OWN.kpp,
        bank_name=OWN.bank.name,
        bank_city="г. Москва",
        bik=OWN.bank.bik,
        corr_account=OWN.bank.correspondent_account,
    )


def demo_statement(specs: list[DocumentSpec]) -> bytes:
    """The ``kl_to_1c.txt`` our bank would give for those days: 1.03, Windows-1251, CRLF."""
    last = max(spec.date for spec in specs)
    return write_statement(
        [own_account()],
        specs,
        version="1.03",
        encoding="cp1251",
        created=datetime.combine(last, time(18, 5)),
        sender="СберБизнес",
    )


def import_statement(ctx: _Ctx, roles: DealRoles, orders: list[PlannedOrder]) -> None:
    """Write the demo's statement and import it as a person would (nothing new the second time)."""
    specs = plan_statement(ctx, roles, orders)
    if not specs:
        return
    data = demo_statement(specs)
    with recorded_at(ctx.moment(specs[-1].date, 8 * 60 + 10)):
        result = apply_import(ctx.runtime, data, ctx.actor)
    ctx.summary.payments += result.recorded


# -- the entry point --------------------------------------------------------------------------


def seed_documents(
    runtime: Runtime,
    catalogue: dict[str, UUID],
    companies: dict[str, UUID],
    now: datetime,
    actor: str,
) -> MoneySummary:
    """Our company, suppliers, documents, contracts, supplier orders and a bank statement's
    payments on the demo's deals; safe to run again.

    `catalogue` is the demo's products by SKU, `companies` its companies by name (the
    companies made here are added to it). Call it after the sales demo, with the views
    caught up, while nothing else appends: past moments are set on the history clock.
    """
    ctx = _Ctx(runtime, now, actor, companies)
    ensure_company_attributes(ctx.app, actor)
    ensure_party(ctx, OWN, ["own"])
    with_requisites = {
        str(ensure_party(ctx, party, None)) for name, party in CLIENTS.items() if name in companies
    }
    suppliers: dict[str, UUID] = {}
    contacts: dict[str, UUID] = {}
    for supplier in SUPPLIERS:
        company_id = ensure_party(ctx, supplier.party, ["supplier"])
        suppliers[supplier.party.name] = company_id
        contacts[str(company_id)] = ensure_supplier_contact(ctx, supplier, company_id)
    link_products(ctx, catalogue, suppliers)
    ctx.sync()
    deals = demo_deals(runtime)
    roles = deal_roles(deals, with_requisites)
    orders = seed_supplier_orders(ctx, deals)
    planned = plan_documents(roles, ctx.today) + [
        PlannedDocument(
            f"{order.order_id}:purchase_order",
            DocumentKind.PURCHASE_ORDER,
            order.issued_on,
            order.deal,
            supplier_order_id=order.order_id,
        )
        for order in orders
    ]
    for seq, item in enumerate(sorted(planned, key=_sort_key)):
        _issue(ctx, item, seq)
    send_orders(ctx, orders, contacts)
    send_an_invoice(ctx, roles)
    ctx.sync()
    import_statement(ctx, roles, orders)
    ctx.sync()
    return ctx.summary
