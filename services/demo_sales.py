"""Demo sales: a catalogue, a wholesale price list, rates, and deals with months of history.

A board with three fresh deals shows nothing a manager cares about: how long deals sit in
a stage, what was lost and why, what a client has brought in. So `seed_sales` gives the
demo's clients deals in every shipped pipeline whose stage moves, wins and losses happened
over the past half year (the deal events take those moments through
`history_clock.recorded_at`), with products at both VAT rates (closed deals of December
2025 at 20 %, open ones at 22 %), discounts, a deal in dollars, and open tasks.

The same rules as the rest of the demo (services/demo.py, which calls this module):

* Planned first from a seeded generator (`plan_deals`), so every run plans the same deals.
* Idempotent: deal ids are `uuid5` of their number, and a deal that exists is skipped
  with its moves and tasks; products are found by SKU and the price list by its client
  group in the log; a rate that is already recorded changes nothing.
* History is written one command at a time: the history clock is process-wide, so two
  deals seeded at once would take each other's moments.

It takes plain descriptions of the clients (`DealClient`) rather than the demo's plans, so
this module does not import services/demo.py, which imports it.
"""

# The demo is half Russian on purpose: Cyrillic letters that look Latin are not a mistake here.
# ruff: noqa: RUF001

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.utils import get_topic

from threadline.domain.commands.application import Threadline
from threadline.domain.commands.pipelines import SEEDED_PIPELINES
from threadline.domain.model.deal import Deal
from threadline.domain.model.history_clock import recorded_at
from threadline.domain.model.message import Message, inbound_message_id
from threadline.domain.model.pipeline import seeded_pipeline_id, seeded_stage_id
from threadline.domain.model.product import PriceList, Product

SALES_SEED = 4242
DEAL_NAMESPACE = uuid5(NAMESPACE_URL, "https://threadline.dev/demo-deal")
WHOLESALE = "wholesale"
WHOLESALE_COMPANIES = ('АО "СеверСталь-Логистик"', "Northwind Traders")
"""Demo companies put into the wholesale client group (when the demo has them)."""


def demo_deal_id(number: int) -> UUID:
    """The id of the demo's deal `number`: the same every run, so a second run finds it."""
    return uuid5(DEAL_NAMESPACE, f"demo-deal-{number}")


# -- the catalogue ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProductSpec:
    sku: str
    name: str
    name_en: str
    unit: str
    price: str
    cost: str
    vat: str  # standard, reduced, zero, none
    currency: str = "RUB"
    vat_included: bool = True


CATALOGUE: tuple[ProductSpec, ...] = (
    ProductSpec("DEMO-RACK-200", "Стеллаж складской СТ-200", "Warehouse rack ST-200", "шт", "18500", "11200", "standard"),
    ProductSpec("DEMO-TRUCK-25", "Тележка гидравлическая ТГ-2500", "Pallet truck PT-2500", "шт", "32000", "21500", "standard"),
    ProductSpec("DEMO-FILM-500", "Стрейч-плёнка, рулон 500 м", "Stretch film, 500 m roll", "рул", "1250", "640", "standard"),
    ProductSpec("DEMO-BOX-604", "Коробка картонная 60×40×40", "Cardboard box 60×40×40", "шт", "95", "41", "standard"),
    ProductSpec("DEMO-SCAN-30", "Сканер штрихкодов СК-30", "Barcode scanner SK-30", "шт", "14900", "9800", "standard"),
    ProductSpec("DEMO-PRINT-4", "Термопринтер этикеток ТП-4", "Label printer TP-4", "шт", "23400", "16100", "standard"),
    ProductSpec("DEMO-LABEL-58", "Термоэтикетки 58×40, рулон", "Thermal labels 58×40, roll", "рул", "180", "75", "standard"),
    ProductSpec("DEMO-GLOVE-100", "Перчатки медицинские, уп. 100 шт", "Medical gloves, box of 100", "уп", "650", "380", "reduced"),
    ProductSpec("DEMO-BOOK-LOG", "Учебник «Складская логистика»", "Textbook: Warehouse logistics", "шт", "1200", "700", "reduced"),
    ProductSpec("DEMO-DELIVERY", "Доставка по Москве", "Delivery within Moscow", "рейс", "2500", "1400", "standard"),
    ProductSpec("DEMO-MOUNT", "Монтаж стеллажей", "Rack assembly", "секц", "4500", "2000", "standard"),
    ProductSpec("DEMO-TRAIN-DAY", "Обучение персонала, день", "Staff training, one day", "день", "25000", "9000", "none"),
    ProductSpec("DEMO-CONSULT", "Консультация по логистике, час", "Logistics consulting, hour", "ч", "6000", "2500", "none"),
    ProductSpec("DEMO-WMS-YEAR", "Лицензия WMS «Склад», год", "WMS licence, one year", "шт", "120000", "30000", "none"),
    ProductSpec("DEMO-EXPORT-RACK", "Стеллаж СТ-200 на экспорт", "Rack ST-200 for export", "шт", "17900", "11200", "zero"),
    ProductSpec("DEMO-SCAN-X900", "Промышленный сканер X-900 (импорт)", "Industrial scanner X-900", "pcs", "340", "250", "standard", "USD"),
)  # fmt: skip
WHOLESALE_PRICES: dict[str, str] = {
    "DEMO-RACK-200": "16900",
    "DEMO-TRUCK-25": "29500",
    "DEMO-FILM-500": "1090",
    "DEMO-BOX-604": "82",
    "DEMO-LABEL-58": "150",
    "DEMO-GLOVE-100": "590",
}
"""The "wholesale" price list (RUB): what the group's companies pay instead of the catalogue."""
PRICE_LIST_NAME = "Опт / Wholesale"

# What each pipeline's deals are about: (SKU, quantity range) to pick lines from.
PIPELINE_GOODS: dict[str, tuple[tuple[str, tuple[int, int]], ...]] = {
    "new-clients": (
        ("DEMO-RACK-200", (4, 40)),
        ("DEMO-TRUCK-25", (1, 4)),
        ("DEMO-SCAN-30", (2, 10)),
        ("DEMO-PRINT-4", (1, 3)),
        ("DEMO-MOUNT", (4, 40)),
        ("DEMO-WMS-YEAR", (1, 1)),
        ("DEMO-TRAIN-DAY", (1, 3)),
        ("DEMO-EXPORT-RACK", (10, 30)),
    ),
    "repeat-sales": (
        ("DEMO-FILM-500", (20, 200)),
        ("DEMO-BOX-604", (200, 2000)),
        ("DEMO-LABEL-58", (50, 400)),
        ("DEMO-GLOVE-100", (10, 80)),
        ("DEMO-DELIVERY", (1, 6)),
        ("DEMO-BOOK-LOG", (5, 30)),
    ),
    "inbound-requests": (
        ("DEMO-SCAN-30", (1, 4)),
        ("DEMO-CONSULT", (2, 12)),
        ("DEMO-RACK-200", (2, 12)),
        ("DEMO-DELIVERY", (1, 2)),
        ("DEMO-BOOK-LOG", (1, 10)),
        ("DEMO-TRAIN-DAY", (1, 2)),
    ),
}
DEALS_PER_PIPELINE = {"new-clients": 20, "repeat-sales": 12, "inbound-requests": 14}
OUTCOMES = ("open", "won", "open", "lost", "open", "open", "won", "open", "open", "lost")
"""Cycled through per pipeline: a fifth won, a fifth lost, the rest open, in every demo."""
TASK_KINDS: tuple[tuple[str, str, str], ...] = (
    ("call", "Созвониться по сделке", "Call about the deal"),
    ("proposal", "Отправить коммерческое предложение", "Send the proposal"),
    ("email", "Выставить счёт", "Send the invoice"),
    ("meeting", "Встреча с клиентом", "Meet the client"),
)
TASK_DUE = ("overdue", "today", "upcoming", "upcoming")
VAT_SWITCH = date(2026, 1, 1)
"""Standard VAT goes from 20 % to 22 % that day; the December 2025 deals keep the old rate."""
RATE_DAYS = 10
RATES = {"USD": Decimal("92.40"), "EUR": Decimal("99.80")}


# -- the clients the deals are for ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DealClient:
    """What the sales demo needs of one demo client (services/demo.py builds these)."""

    index: int
    name: str
    russian: bool
    company: str | None
    first_channel: str
    first_dedup_key: str

    @property
    def first_message_id(self) -> UUID:
        return inbound_message_id(self.first_channel, self.first_dedup_key)


# -- the plan ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedStep:
    """One thing that happened to a deal at `at`: a move, a win, a loss, or new lines."""

    at: datetime
    kind: str  # move, won, lost, lines
    stage_key: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class PlannedLine:
    sku: str
    quantity: int
    discount: int = 0
    name: str = ""  # a free line (no product) when sku is ""
    price: str = ""
    vat: str = ""


@dataclass(frozen=True, slots=True)
class PlannedDeal:
    number: int
    pipeline_key: str
    title: str
    client: DealClient | None
    company: str | None  # the company the deal is for when it has no contact
    manager: int  # index into the managers
    currency: str
    lines: tuple[PlannedLine, ...]
    created_at: datetime
    steps: tuple[PlannedStep, ...]
    expected_close: date
    from_conversation: bool
    task: tuple[str, str, str] | None  # (type, title, due: overdue/today/upcoming)

    @property
    def deal_id(self) -> UUID:
        return demo_deal_id(self.number)

    @property
    def outcome(self) -> str:
        last = self.steps[-1].kind if self.steps else "open"
        return last if last in ("won", "lost") else "open"


@dataclass(frozen=True, slots=True)
class _Funnel:
    """A shipped pipeline's stage keys by meaning, and its lost reasons."""

    key: str
    open: tuple[str, ...]
    won: str
    lost: tuple[str, ...]
    reasons: tuple[str, ...]


def _funnels() -> dict[str, _Funnel]:
    funnels = {}
    for key, _name, stages, reasons in SEEDED_PIPELINES:
        funnels[key] = _Funnel(
            key=key,
            open=tuple(s[0] for s in stages if s[2] == "open"),
            won=next(s[0] for s in stages if s[2] == "won"),
            lost=tuple(s[0] for s in stages if s[2] == "lost"),
            reasons=tuple(reasons),
        )
    return funnels


class _DealPlanner:
    def __init__(
        self, clients: list[DealClient], companies: list[str], managers: int, now: datetime
    ) -> None:
        self.rng = random.Random(SALES_SEED)
        self.clients = clients
        self.companies = companies
        self.managers = managers
        self.now = now
        self.funnels = _funnels()
        self.specs = {spec.sku: spec for spec in CATALOGUE}

    def _moment(self, days_ago: float) -> datetime:
        """A working-hours moment `days_ago` days before now (never in the future)."""
        day = (self.now - timedelta(days=days_ago)).date()
        moment = datetime.combine(
            day, time(self.rng.randint(8, 17), self.rng.randrange(60)), tzinfo=UTC
        )
        return min(moment, self.now - timedelta(minutes=30))

    def _client(self, pipeline_key: str, english: bool = False) -> DealClient:
        pool = self.clients
        if english:
            pool = [c for c in pool if not c.russian] or pool
        elif pipeline_key == "repeat-sales":
            pool = [c for c in pool if c.company] or pool
        return self.rng.choice(pool)

    def _lines(self, pipeline_key: str, russian: bool, wholesale: bool) -> tuple[PlannedLine, ...]:
        goods = self.rng.sample(PIPELINE_GOODS[pipeline_key], self.rng.choice((1, 1, 2, 2, 3)))
        lines = []
        for k, (sku, (low, high)) in enumerate(goods):
            discount = self.rng.choice((0, 0, 5, 10, 15)) if k == 0 else 0
            spec = self.specs[sku]
            price = WHOLESALE_PRICES.get(sku, "") if wholesale else ""
            lines.append(
                PlannedLine(
                    sku=sku,
                    quantity=self.rng.randint(low, high),
                    discount=discount,
                    name="" if russian else spec.name_en,
                    price=price,
                )
            )
        return tuple(lines)

    def _steps(
        self, funnel: _Funnel, outcome: str, created: datetime, back_and_forth: bool, relines: bool
    ) -> tuple[tuple[PlannedStep, ...], datetime]:
        """The moves after creation in time order, and when the deal closed (or now)."""
        rng = self.rng
        if outcome == "open":
            reached = rng.randrange(len(funnel.open))
            end = self.now - timedelta(hours=rng.randint(1, 72))
        else:
            reached = rng.randrange(1 if outcome == "lost" else 2, len(funnel.open) + 1) - 1
            span = (self.now - created).total_seconds()
            end = created + timedelta(seconds=span * rng.uniform(0.4, 0.95))
        path = list(funnel.open[1 : reached + 1])
        if back_and_forth and len(path) >= 1:
            # Forward, back a stage (the client went quiet), then forward again.
            k = rng.randrange(len(path))
            previous = funnel.open[funnel.open.index(path[k]) - 1]
            path[k + 1 : k + 1] = [previous, path[k]]
        kinds: list[tuple[str, str, str]] = [("move", key, "") for key in path]
        if relines and kinds:
            kinds.insert(rng.randrange(len(kinds) + 1), ("lines", "", ""))
        if outcome == "won":
            kinds.append(("won", funnel.won, ""))
        elif outcome == "lost":
            stage = funnel.lost[-1]
            reason = rng.choice(funnel.reasons)
            if "spam" in funnel.lost and rng.random() < 0.5:
                stage, reason = "spam", next(r for r in funnel.reasons if r == "Spam")
            kinds.append(("lost", stage, reason))
        start = created + timedelta(hours=2)
        if end <= start:
            end = start + timedelta(hours=1)
        times = sorted(
            start + (end - start) * rng.uniform(0.05, 1.0) for _ in range(max(0, len(kinds) - 1))
        )
        if kinds:
            times.append(end)
        steps = tuple(
            PlannedStep(at, kind, stage, reason)
            for at, (kind, stage, reason) in zip(times, kinds, strict=True)
        )
        return steps, end

    def deal(self, number: int, pipeline_key: str, j: int) -> PlannedDeal:
        rng = self.rng
        funnel = self.funnels[pipeline_key]
        outcome = OUTCOMES[j % len(OUTCOMES)]
        dollars = pipeline_key == "new-clients" and j in (5, 6)
        company_only = pipeline_key == "repeat-sales" and j % 4 == 3 and bool(self.companies)
        client = None if company_only else self._client(pipeline_key, english=dollars)
        company = rng.choice(self.companies) if company_only else None
        company_name = company or (client.company if client else None)
        russian = client.russian if client else bool(company and _cyrillic(company))
        wholesale = company_name in WHOLESALE_COMPANIES
        created = self._moment(rng.uniform(4, 180))
        steps, end = self._steps(funnel, outcome, created, j % 4 == 2, j % 5 == 3)
        if dollars:
            lines: tuple[PlannedLine, ...] = (
                PlannedLine("DEMO-SCAN-X900", rng.randint(2, 12), 5, "Industrial scanner X-900"),
                PlannedLine("", 1, 0, "International shipping", "85.00", "zero"),
            )
        else:
            lines = self._lines(pipeline_key, russian, wholesale)
        close = (
            (self.now + timedelta(days=rng.randint(5, 75))).date()
            if outcome == "open"
            else end.date()
        )
        return PlannedDeal(
            number=number,
            pipeline_key=pipeline_key,
            title=self._title(lines[0], russian, company_name or (client.name if client else "")),
            client=client,
            company=company,
            manager=rng.randrange(self.managers),
            currency="USD" if dollars else "RUB",
            lines=lines,
            created_at=created,
            steps=steps,
            expected_close=close,
            from_conversation=client is not None
            and (pipeline_key == "inbound-requests" or j % 2 == 0),
            task=self._task(j) if outcome == "open" and j % 5 != 4 else None,
        )

    def december_2025(self, number: int, pipeline_key: str, won: bool) -> PlannedDeal:
        """A deal closed in December 2025, so its standard-rate lines carry the old 20 %."""
        rng = self.rng
        funnel = self.funnels[pipeline_key]
        client = self._client(pipeline_key)
        created = datetime(2025, 11, rng.randint(3, 20), rng.randint(9, 17), tzinfo=UTC)
        closed = datetime(2025, 12, rng.randint(10, 26), rng.randint(9, 17), tzinfo=UTC)
        middle = created + (closed - created) / 2
        steps = [PlannedStep(middle, "move", funnel.open[1])]
        if won:
            steps.append(PlannedStep(closed, "won", funnel.won))
        else:
            steps.append(PlannedStep(closed, "lost", funnel.lost[-1], funnel.reasons[0]))
        lines = self._lines(pipeline_key, client.russian, client.company in WHOLESALE_COMPANIES)
        return PlannedDeal(
            number=number,
            pipeline_key=pipeline_key,
            title=self._title(lines[0], client.russian, client.company or client.name),
            client=client,
            company=None,
            manager=rng.randrange(self.managers),
            currency="RUB",
            lines=lines,
            created_at=created,
            steps=tuple(steps),
            expected_close=closed.date(),
            from_conversation=False,
            task=None,
        )

    def _title(self, line: PlannedLine, russian: bool, client: str) -> str:
        if not line.sku:
            what = line.name
        else:
            spec = self.specs[line.sku]
            what = spec.name if russian else spec.name_en
        return f"{what} — {client}" if client else what

    def _task(self, j: int) -> tuple[str, str, str]:
        kind, title_ru, title_en = TASK_KINDS[j % len(TASK_KINDS)]
        return kind, f"{title_ru} / {title_en}", TASK_DUE[j % len(TASK_DUE)]


def _cyrillic(text: str) -> bool:
    return any("\u0400" <= ch <= "\u04ff" for ch in text)


def plan_deals(
    clients: list[DealClient], companies: list[str], managers: int, now: datetime
) -> list[PlannedDeal]:
    """The demo's deals: the same every run for the same clients (times are relative to now,
    except the December 2025 ones)."""
    if not clients or managers < 1:
        return []
    planner = _DealPlanner(clients, sorted(companies), managers, now)
    deals: list[PlannedDeal] = []
    counters = dict.fromkeys(DEALS_PER_PIPELINE, 0)
    # Interleaved, so every pipeline gets a fair share of the clients drawn.
    while any(counters[k] < n for k, n in DEALS_PER_PIPELINE.items()):
        for key, total in DEALS_PER_PIPELINE.items():
            if counters[key] < total:
                deals.append(planner.deal(len(deals), key, counters[key]))
                counters[key] += 1
    if now.date() > VAT_SWITCH + timedelta(days=30):
        deals.append(planner.december_2025(len(deals), "new-clients", won=True))
        deals.append(planner.december_2025(len(deals), "repeat-sales", won=True))
        deals.append(planner.december_2025(len(deals), "inbound-requests", won=False))
    return deals


# -- applying it ------------------------------------------------------------------------------


@dataclass
class SalesSummary:
    """What this run added of the sales demo."""

    products: int = 0
    deals: int = 0
    tasks: int = 0
    catalogue: dict[str, UUID] = field(default_factory=dict)


def _created_ids(app: Threadline, topic: str) -> list[UUID]:
    """The ids of every aggregate whose creation event has `topic`, from the log."""
    ids: list[UUID] = []
    start = 1
    while True:
        page = app.recorder.select_notifications(start=start, limit=500, topics=[topic])
        if not page:
            return ids
        ids.extend(UUID(str(n.originator_id)) for n in page)
        start = page[-1].id + 1


def ensure_catalogue(app: Threadline, actor: str, summary: SalesSummary) -> dict[str, UUID]:
    """The demo's products by SKU, creating those missing (found by SKU in the log)."""
    found: dict[str, UUID] = {}
    for product_id in _created_ids(app, get_topic(Product.ProductCreated)):
        product: Product = app.repository.get(product_id)
        found.setdefault(product.sku, product.id)
    for spec in CATALOGUE:
        if spec.sku in found:
            continue
        found[spec.sku] = app.create_product(
            actor,
            spec.name,
            spec.price,
            currency=spec.currency,
            cost=spec.cost,
            sku=spec.sku,
            unit=spec.unit,
            vat=spec.vat,
            vat_included=spec.vat_included,
        ).value
        summary.products += 1
    return found


def ensure_price_list(app: Threadline, catalogue: dict[str, UUID], actor: str) -> None:
    """The wholesale group's price list, made (with its prices) only if the group has none."""
    for list_id in _created_ids(app, get_topic(PriceList.PriceListCreated)):
        price_list: PriceList = app.repository.get(list_id)
        if price_list.client_group == WHOLESALE and price_list.currency == "RUB":
            return
    list_id = app.create_price_list(actor, PRICE_LIST_NAME, WHOLESALE, "RUB").value
    prices = {str(catalogue[sku]): price for sku, price in WHOLESALE_PRICES.items()}
    app.update_price_list(list_id, actor, prices=prices)


def ensure_rates(app: Threadline, today: date, actor: str) -> None:
    """Dollar and euro rates for the last days (recording the same rate again changes nothing)."""
    for back in range(RATE_DAYS):
        day = today - timedelta(days=back)
        wobble = Decimal((day.toordinal() * 37) % 200 - 100) / 100
        for currency, base in RATES.items():
            app.record_exchange_rate(actor, currency, day, base + wobble)


def set_client_groups(app: Threadline, companies: dict[str, UUID], actor: str) -> None:
    """Put the wholesale demo companies into the group (only a change is recorded)."""
    for name in WHOLESALE_COMPANIES:
        if name in companies:
            app.update_company(companies[name], actor, client_group=WHOLESALE)


def _line(line: PlannedLine, catalogue: dict[str, UUID]) -> dict[str, Any]:
    raw: dict[str, Any] = {"quantity": line.quantity, "discount": line.discount}
    if line.sku:
        raw["product_id"] = catalogue[line.sku]
    if line.name:
        raw["name"] = line.name
    if line.price:
        raw["price"] = line.price
    if line.vat:
        raw["vat"] = line.vat
    return raw


def _due_at(when: str, now: datetime) -> datetime:
    if when == "overdue":
        return now - timedelta(days=1, hours=4)
    if when == "today":
        return max(now + timedelta(hours=2), now.replace(hour=23, minute=0))
    return now + timedelta(days=2, hours=3)


def _apply(
    app: Threadline,
    plan: PlannedDeal,
    catalogue: dict[str, UUID],
    companies: dict[str, UUID],
    managers: list[UUID],
    now: datetime,
) -> int | None:
    """Seed one planned deal with its history; returns its tasks, None if it was skipped."""
    contact_id = conversation_id = message_id = None
    if plan.client is not None:
        message: Message = app.repository.get(plan.client.first_message_id)
        contact_id, conversation_id, message_id = (
            message.contact_id,
            message.conversation_id,
            message.id,
        )
    company_id = companies.get(plan.company) if plan.company else None
    if contact_id is None and company_id is None:
        return None
    manager_id = managers[plan.manager]
    actor = f"user:{manager_id}"
    pipeline_id = seeded_pipeline_id(plan.pipeline_key)
    lines = [_line(line, catalogue) for line in plan.lines]
    with recorded_at(plan.created_at):
        app.create_deal(
            actor,
            plan.title,
            pipeline_id,
            contact_id=contact_id,
            company_id=company_id,
            manager_id=manager_id,
            currency=plan.currency,
            lines=lines,
            expected_close=plan.expected_close,
            source_message_id=message_id if plan.from_conversation else None,
            conversation_id=conversation_id if plan.from_conversation else None,
            deal_id=plan.deal_id,
        )
    for step in plan.steps:
        with recorded_at(step.at):
            if step.kind == "lines":
                # Renegotiated: a larger order at a better price.
                lines[0] = {**lines[0], "quantity": lines[0]["quantity"] + 2, "discount": 10}
                app.change_deal_lines(plan.deal_id, lines, actor)
            else:
                stage_id = seeded_stage_id(plan.pipeline_key, step.stage_key)
                app.move_deal(plan.deal_id, stage_id, actor, reason=step.reason)
    if plan.task is None:
        return 0
    if contact_id is not None:  # the deal names the survivor of a merged client
        deal: Deal = app.repository.get(plan.deal_id)
        contact_id = deal.contact_id
    task_type, title, when = plan.task
    app.create_task(
        actor,
        f"{title}: {plan.title}"[:500],
        type=task_type,
        due_at=_due_at(when, now),
        assignee_id=manager_id,
        contact_id=contact_id,
        deal_id=plan.deal_id,
    )
    return 1


def seed_sales(
    app: Threadline,
    clients: list[DealClient],
    companies: dict[str, UUID],
    managers: list[UUID],
    now: datetime,
    actor: str,
) -> SalesSummary:
    """Pipelines, catalogue, price list, rates and the demo's deals; safe to run again.

    Call it when nothing else appends (the demo seed does, before the app serves): the
    deals' past moments are set on the process-wide history clock.
    """
    summary = SalesSummary()
    app.seed_pipelines(actor)
    catalogue = ensure_catalogue(app, actor, summary)
    summary.catalogue = catalogue
    ensure_price_list(app, catalogue, actor)
    ensure_rates(app, now.date(), actor)
    set_client_groups(app, companies, actor)
    for plan in plan_deals(clients, list(companies), len(managers), now):
        if plan.deal_id in app.repository:
            continue
        tasks = _apply(app, plan, catalogue, companies, managers, now)
        if tasks is not None:
            summary.deals += 1
            summary.tasks += tasks
    return summary
