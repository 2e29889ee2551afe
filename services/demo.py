"""Demo data: a believable, bilingual sales and support desk in one call.

A CRM shown empty explains nothing, so `seed_demo` fills a store with what a
small desk accumulates in a few weeks: accounts for every role, Russian- and
English-speaking clients writing through every channel, replies, notes,
assignments, tags, typed attributes, companies and tasks that are overdue,
due today or upcoming.

Two rules shape the code:

* Everything is planned first from `random.Random(42)` (`plan_contacts`), then
  applied, so every run produces the same people, texts and dedup keys
  whatever the store already holds.
* It is idempotent: users, attribute definitions and companies are looked up
  before they are created, inbound messages carry deterministic dedup keys (a
  second delivery is a duplicate), and the extras of a contact (replies,
  notes, tags, tasks...) are only added by the run that created the contact.
  Running it twice appends nothing the second time.
"""

# The demo is half Russian on purpose: Cyrillic letters that look Latin are not a mistake here.
# ruff: noqa: RUF001, RUF003

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any
from uuid import UUID

import phonenumbers

from threadline.domain.commands.application import Threadline
from threadline.domain.model.attributes import AttributeDefinition, AttributeType
from threadline.domain.model.identities import normalise_phone
from threadline.domain.model.inbound import InboundMessage
from threadline.domain.model.message import Message
from threadline.services.demo_clientsch import seed_inbound_history
from threadline.services.demo_documents import seed_documents
from threadline.services.demo_managers import seed_sales_plans
from threadline.services.demo_sales import DealClient, seed_sales
from threadline.services.demo_segments import seed_segments
from threadline.services.demo_service import seed_service
from threadline.services.demo_sources import seed_sources
from threadline.services.runtime import Runtime
from threadline.triggers.defaults import seed_defaults

DEMO_PASSWORD = "threadline-demo"
SEED = 42
WORKERS = 8
SETUP_ACTOR = "cli"
"""Who set up accounts, the attribute registry and companies: the operator running the seed."""


# -- accounts ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DemoAccount:
    email: str
    role: str
    name: str
    locale: str = "en"


DEMO_EMAIL_DOMAIN = "threadline.example"
"""``.example`` is reserved for examples (RFC 2606), so no real mailbox can receive the demo's
mail; the special-use names (``.local``, ``.test``) are accepted too, as company networks use them."""
DEMO_ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount(f"admin@{DEMO_EMAIL_DOMAIN}", "admin", "Ada Admin"),
    DemoAccount(f"manager@{DEMO_EMAIL_DOMAIN}", "manager", "Max Manager"),
    DemoAccount(f"operator@{DEMO_EMAIL_DOMAIN}", "operator", "Oscar Operator"),
    DemoAccount(f"olga.operator@{DEMO_EMAIL_DOMAIN}", "operator", "Ольга Операторова", "ru"),
    DemoAccount(f"auditor@{DEMO_EMAIL_DOMAIN}", "auditor", "Audrey Auditor"),
    # Sales managers: deals on the board belong to several people (services/demo_sales.py).
    DemoAccount(f"irina.sales@{DEMO_EMAIL_DOMAIN}", "manager", "Ирина Соколова", "ru"),
    DemoAccount(f"sam.sales@{DEMO_EMAIL_DOMAIN}", "manager", "Sam Seller"),
)
MANAGER_EMAIL = f"manager@{DEMO_EMAIL_DOMAIN}"
OPERATOR_EMAIL = {
    False: f"operator@{DEMO_EMAIL_DOMAIN}",
    True: f"olga.operator@{DEMO_EMAIL_DOMAIN}",
}
"""Who handles a client, by `russian`: each operator answers in their own language."""


@dataclass(frozen=True, slots=True)
class Staff:
    """The ids the seeded activity is attributed to."""

    manager_id: UUID
    operator_ids: dict[bool, UUID]

    def operator(self, russian: bool) -> UUID:
        return self.operator_ids[russian]


# -- attributes -------------------------------------------------------------------------------

INDUSTRIES = ("retail", "manufacturing", "it", "logistics", "healthcare", "education")
GENRES = ("rock", "jazz", "classical", "pop", "electronic", "folk")
DEMO_ATTRIBUTES: tuple[AttributeDefinition, ...] = (
    AttributeDefinition("industry", "Industry", AttributeType.CHOICE, INDUSTRIES),
    AttributeDefinition("staff_size", "Staff size", AttributeType.NUMBER),
    AttributeDefinition("birthday", "Birthday", AttributeType.DATE, personal=True),
    AttributeDefinition("region", "Region", AttributeType.TEXT),
    AttributeDefinition("favourite_genre", "Favourite genre", AttributeType.MULTI_CHOICE, GENRES),
    AttributeDefinition("vip", "VIP", AttributeType.BOOLEAN),
)

# -- people -----------------------------------------------------------------------------------

CHANNELS = ("email", "sms", "telegram", "web", "api")
CHANNEL_IDENTITIES: dict[str, tuple[str, ...]] = {
    "email": ("email",),
    "sms": ("phone",),
    "telegram": ("telegram", "phone"),  # the bot asks the client to share their number
    "web": ("web", "email"),  # the chat widget asks for an e-mail first
    "api": ("email", "phone"),  # the website's order form, posted through the API
}
"""What a message on each channel carries. A client's second channel always shares one
identity with the first, so identity resolution joins them into one contact, as in life."""

RU_FIRST_NAMES: tuple[tuple[str, str, bool], ...] = (
    # (name, Latin spelling for the e-mail address, female)
    ("Анна", "anna", True),
    ("Мария", "maria", True),
    ("Екатерина", "ekaterina", True),
    ("Ольга", "olga", True),
    ("Татьяна", "tatiana", True),
    ("Наталья", "natalia", True),
    ("Ирина", "irina", True),
    ("Светлана", "svetlana", True),
    ("Иван", "ivan", False),
    ("Алексей", "alexey", False),
    ("Дмитрий", "dmitry", False),
    ("Сергей", "sergey", False),
    ("Андрей", "andrey", False),
    ("Михаил", "mikhail", False),
    ("Николай", "nikolay", False),
    ("Павел", "pavel", False),
)
RU_SURNAMES: tuple[tuple[str, str], ...] = (
    # the masculine form; every one takes "а" for the feminine
    ("Смирнов", "smirnov"),
    ("Иванов", "ivanov"),
    ("Кузнецов", "kuznetsov"),
    ("Попов", "popov"),
    ("Соколов", "sokolov"),
    ("Лебедев", "lebedev"),
    ("Козлов", "kozlov"),
    ("Новиков", "novikov"),
    ("Морозов", "morozov"),
    ("Волков", "volkov"),
    ("Орлов", "orlov"),
    ("Васильев", "vasiliev"),
)
EN_FIRST_NAMES = (
    "Emma", "Olivia", "Sophie", "Grace", "Charlotte", "Sarah",
    "James", "Oliver", "Thomas", "Daniel", "Michael", "David",
)  # fmt: skip
EN_SURNAMES = (
    "Smith", "Johnson", "Brown", "Taylor", "Wilson", "Clarke",
    "Walker", "Hughes", "Miller", "Davis", "Evans", "Baker",
)  # fmt: skip
EMAIL_DOMAINS = ("example.com", "example.org", "example.net")

RU_MOBILE_CODES = ("916", "903", "905", "915", "925", "926", "985", "999")
UK_DRAMA_PREFIXES = (
    "+442079460", "+441134960", "+441144960", "+441164960", "+441174960", "+441184960",
    "+441214960", "+441314960", "+441414960", "+441514960", "+441614960", "+441914980",
    "+442896496", "+442920180",
)  # fmt: skip
"""Ofcom's numbers reserved for drama (020 7946 0xxx, 0113 496 0xxx...): valid for
`phonenumbers` yet nobody's, so a demo reply can never reach a real person. (The drama
mobile range 07700 900xxx would read better, but `phonenumbers`, and so the store,
rejects it.) Russian numbers have no such range: those are random +7 9xx mobiles."""

RU_REGIONS = ("Москва", "Санкт-Петербург", "Казань", "Екатеринбург", "Новосибирск")
REGIONS_BY_COUNTRY = {
    "UK": ("London", "Manchester", "Leeds", "Birmingham", "Edinburgh"),
    "US": ("Washington, DC", "New York", "Chicago", "San Francisco", "Austin"),
}

# -- companies --------------------------------------------------------------------------------

COMPANIES: dict[bool, tuple[tuple[str, str], ...]] = {
    # by `russian`: (name, industry)
    True: (
        ('ООО "Ромашка"', "retail"),
        ('АО "СеверСталь-Логистик"', "logistics"),
        ('ООО "ТехноПарк"', "it"),
        ('ООО "Уральский завод металлоконструкций"', "manufacturing"),
    ),
    False: (
        ("Northwind Traders", "retail"),
        ("Acme Corp", "manufacturing"),
        ("Blue Harbor Logistics", "logistics"),
        ("Brightside Academy", "education"),
    ),
}

# -- what clients write about -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Topic:
    """One reason to write: `{order}` in any text becomes the conversation's order number."""

    key: str
    subject: str
    opening: str
    follow_ups: tuple[str, ...]
    reply: str


RU_TOPICS: tuple[Topic, ...] = (
    Topic(
        "delivery",
        "Сроки поставки по заказу №{order}",
        "Здравствуйте! Подскажите, пожалуйста, сроки поставки по заказу №{order}?",
        ("Нам важно получить товар до конца месяца. Можно ускорить отгрузку?",),
        "Добрый день! Заказ №{order} отгрузим в четверг, доставка 2–3 рабочих дня. "
        "Трек-номер пришлём отдельным письмом.",
    ),
    Topic(
        "invoice",
        "Счёт на оплату",
        "Добрый день! Пришлите, пожалуйста, счёт на оплату по заказу №{order}, "
        "реквизиты нашей организации во вложении.",
        ("Оплату провели вчера, проверьте, пожалуйста, поступление.",),
        "Здравствуйте! Счёт отправили на почту, срок оплаты — 5 банковских дней.",
    ),
    Topic(
        "price_list",
        "Запрос прайс-листа",
        "Здравствуйте! Можно получить актуальный прайс-лист? Интересуют оптовые цены.",
        ("Планируем закупку от 200 единиц ежемесячно. Какая будет скидка?",),
        "Добрый день! Прайс-лист во вложении, оптовые скидки начинаются от 50 единиц.",
    ),
    Topic(
        "broken_order",
        "Заказ №{order} пришёл повреждённым",
        "Здравствуйте! Заказ №{order} пришёл с разбитой упаковкой, два товара повреждены. "
        "Что нам делать?",
        ("Фото прикладываю. Хотим замену, а не возврат денег.", "Есть новости по замене?"),
        "Приносим извинения! Оформили замену: курьер заберёт повреждённый товар и "
        "привезёт новый в течение двух дней.",
    ),
    Topic(
        "demo",
        "Запрос демонстрации",
        "Добрый день! Хотим посмотреть демо вашей системы для отдела продаж на 15 человек.",
        ("Нам удобно в среду после 14:00 по Москве.",),
        "Здравствуйте! Давайте проведём демо в среду в 14:30, ссылку на встречу пришлём.",
    ),
    Topic(
        "refund",
        "Возврат по заказу №{order}",
        "Здравствуйте, хочу вернуть товар по заказу №{order}: не подошёл размер.",
        ("Деньги вернутся на карту или на расчётный счёт?",),
        "Добрый день! Возврат оформлен, деньги поступят на карту в течение 10 дней.",
    ),
    Topic(
        "documents",
        "Закрывающие документы",
        "Добрый день! Бухгалтерия просит акт сверки и УПД за прошлый квартал.",
        ("Можно продублировать оригиналы почтой России?",),
        "Здравствуйте! Документы отправили через ЭДО, оригиналы направим почтой.",
    ),
    Topic(
        "address",
        "Изменение адреса доставки",
        "Здравствуйте! Можно изменить адрес доставки заказа №{order}? Мы переехали на новый склад.",
        ("Новый адрес: Москва, ул. Складская, д. 7, ворота 3.",),
        "Добрый день! Адрес обновили, заказ привезут на новый склад.",
    ),
)
EN_TOPICS: tuple[Topic, ...] = (
    Topic(
        "delivery",
        "Delivery date for order #{order}",
        "Hello, could you tell me when order #{order} will be delivered?",
        ("We need it before the end of the month. Is express shipping possible?",),
        "Hi! Order #{order} ships on Thursday and arrives in 2-3 business days. "
        "We'll send the tracking number separately.",
    ),
    Topic(
        "invoice",
        "Invoice request",
        "Hi, please send us an invoice for order #{order}. Our billing details are attached.",
        ("We paid yesterday. Could you confirm you've received the payment?",),
        "Hello! The invoice is on its way to your inbox; payment terms are net 14.",
    ),
    Topic(
        "price_list",
        "Price list and volume discounts",
        "Good morning, could you send me your current price list, including wholesale prices?",
        ("We're looking at about 200 units a month. What discount could you offer?",),
        "Good morning! The price list is attached; volume discounts start at 50 units.",
    ),
    Topic(
        "broken_order",
        "Order #{order} arrived damaged",
        "Hi, order #{order} arrived with a crushed box and two items are broken. "
        "What should we do?",
        ("Photos attached. We'd prefer a replacement to a refund.", "Any news on the replacement?"),
        "We're sorry about that! A replacement is booked: the courier will collect the "
        "damaged items and deliver new ones within two days.",
    ),
    Topic(
        "demo",
        "Demo request",
        "Hello, we'd like a demo of your platform for our 15-person sales team.",
        ("Wednesday afternoon works best for us (GMT).",),
        "Hi! How about Wednesday at 2:30 pm GMT? We'll send a meeting link.",
    ),
    Topic(
        "refund",
        "Refund for order #{order}",
        "Hi, I'd like to return order #{order}, the size doesn't fit.",
        ("Will the refund go to my card?",),
        "Hello! Your return is approved; the refund reaches your card within 10 days.",
    ),
    Topic(
        "integration",
        "API integration question",
        "Hi team, does your API support webhooks for new orders? Our developers are asking.",
        ("Is there a sandbox we could test against?",),
        "Hi! Yes, webhooks are supported and we've sent you sandbox credentials.",
    ),
    Topic(
        "address",
        "Change of delivery address",
        "Hello, can we change the delivery address for order #{order}? We've moved warehouses.",
        ("The new address is Unit 7, Riverside Trading Estate.",),
        "Hi! The address is updated and the order will go to your new warehouse.",
    ),
)
NUDGES = {True: "Есть новости по моему вопросу?", False: "Any update on this?"}
NOTES = {
    True: (
        "Клиент просил перезвонить после обеда.",
        "Проверить остатки на складе перед ответом.",
        "Крупный клиент, скидку согласовать с руководителем.",
    ),
    False: (
        "Customer asked for a call back after lunch.",
        "Check stock levels before confirming the date.",
        "Key account: any discount needs manager approval.",
    ),
}
TASKS: tuple[tuple[str, str, str], ...] = (
    # (type, Russian title, English title)
    ("call", "Перезвонить клиенту", "Call the customer back"),
    ("email", "Отправить счёт", "Send the invoice"),
    ("proposal", "Подготовить коммерческое предложение", "Prepare a proposal"),
    ("meeting", "Провести демо", "Run the product demo"),
    ("other", "Проверить поступление оплаты", "Check the payment has arrived"),
)
TASK_SCHEDULE: tuple[tuple[str, bool], ...] = (
    # (when it is due, completed); cycled through so even a small demo has each kind
    ("overdue", False),
    ("today", False),
    ("upcoming", False),
    ("overdue", True),
    ("upcoming", False),
    ("today", True),
)
SOURCES: tuple[dict[str, Any], ...] = (
    {"utm_source": "yandex", "utm_medium": "cpc", "utm_campaign": "wholesale-search"},
    {"utm_source": "google", "utm_medium": "cpc", "utm_campaign": "price-list-q2"},
    {"utm_source": "telegram", "utm_medium": "telegram-ads", "utm_campaign": "b2b-channel"},
    {
        "utm_source": "partner-blog",
        "utm_medium": "referral",
        "utm_campaign": "partner-program",
        "referrer": "https://partner.example.com/reviews",
    },
)


# -- the plan ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Persona:
    """One client and every identity they could write from."""

    index: int
    name: str
    russian: bool
    email: str
    phone: str
    telegram: str
    visitor: str

    def identities(self, channel: str) -> list[tuple[str, str]]:
        values = {
            "email": self.email,
            "phone": self.phone,
            "telegram": self.telegram,
            "web": self.visitor,
        }
        return [(kind, values[kind]) for kind in CHANNEL_IDENTITIES[channel]]


@dataclass(frozen=True, slots=True)
class PlannedConversation:
    """One thread: the client's messages, and what the desk does about it."""

    topic: str
    channel: str
    thread_key: str
    subject: str
    messages: tuple[str, ...]
    reply: str | None
    note: str | None
    assign: bool
    resolve: bool
    pending: bool


@dataclass(frozen=True, slots=True)
class PlannedTask:
    """`when` is "overdue", "today" or "upcoming": due times are fixed at seeding time."""

    type: str
    title: str
    when: str
    done: bool


@dataclass(frozen=True, slots=True)
class ContactPlan:
    """Everything one client contributes, decided before anything is written."""

    persona: Persona
    conversations: tuple[PlannedConversation, ...]
    source: dict[str, Any]
    tags: tuple[str, ...]
    attributes: dict[str, Any]
    lifecycle: str
    company: tuple[str, str] | None
    tasks: tuple[PlannedTask, ...]

    def dedup_key(self, conversation: int, message: int) -> str:
        """`demo-<contact>-<k>`: the k-th inbound message of the contact, stable across runs."""
        k = sum(len(c.messages) for c in self.conversations[:conversation]) + message
        return f"demo-{self.persona.index}-{k}"


class _Planner:
    """Draws the demo from one seeded generator; keeps identities unique across clients."""

    def __init__(self, seed: int = SEED) -> None:
        self.rng = random.Random(seed)
        self.used: set[str] = set()
        self.task_count = 0

    def contact(self, index: int) -> ContactPlan:
        # Alternating language and rotating first channel: any demo of five or more
        # clients has both languages and every channel, whatever the draws.
        russian = index % 2 == 0
        persona = self._persona(index, russian)
        company = self.rng.choice(COMPANIES[russian]) if self.rng.random() < 0.34 else None
        conversations = self._conversations(persona, CHANNELS[index % len(CHANNELS)])
        attributes = self._attributes(persona, company)
        return ContactPlan(
            persona=persona,
            conversations=conversations,
            source=self._source(),
            tags=self._tags(company is not None, {c.topic for c in conversations}, attributes),
            attributes=attributes,
            lifecycle=self.rng.choice(("lead", "lead", "qualified", "customer", "customer")),
            company=company,
            tasks=self._tasks(persona),
        )

    # -- identities ---------------------------------------------------------------------

    def _unique(self, make: Callable[[], str]) -> str:
        for _ in range(10_000):
            value = make()
            if value not in self.used:
                self.used.add(value)
                return value
        raise RuntimeError("the demo ran out of distinct identities; ask for fewer contacts")

    def _persona(self, index: int, russian: bool) -> Persona:
        rng = self.rng
        if russian:
            first, first_latin, female = rng.choice(RU_FIRST_NAMES)
            last, last_latin = rng.choice(RU_SURNAMES)
            if female:
                last, last_latin = last + "а", last_latin + "a"
            phone = self._unique(
                lambda: f"+7{rng.choice(RU_MOBILE_CODES)}{rng.randrange(10_000_000):07d}"
            )
        else:
            first, last = rng.choice(EN_FIRST_NAMES), rng.choice(EN_SURNAMES)
            first_latin, last_latin = first.lower(), last.lower()
            phone = self._unique(self._english_phone)
        email = self._email(f"{first_latin}.{last_latin}", index)
        telegram = self._unique(lambda: str(rng.randrange(100_000_000, 7_000_000_000)))
        visitor = self._unique(lambda: f"v-{rng.getrandbits(48):012x}")
        return Persona(
            index, f"{first} {last}", russian, email, normalise_phone(phone), telegram, visitor
        )

    def _email(self, local: str, index: int) -> str:
        """Namesakes are common: the second Anna Smirnova gets her index in the address."""
        domain = self.rng.choice(EMAIL_DOMAINS)
        plain = f"{local}@{domain}"
        return self._unique(lambda: plain if plain not in self.used else f"{local}{index}@{domain}")

    def _english_phone(self) -> str:
        blocks = _fictional_english_numbers()
        prefix, digits = self.rng.choices(blocks, weights=[10**d for _, d in blocks])[0]
        return f"{prefix}{self.rng.randrange(10**digits):0{digits}d}"

    # -- conversations ------------------------------------------------------------------

    def _conversations(
        self, persona: Persona, first_channel: str
    ) -> tuple[PlannedConversation, ...]:
        rng = self.rng
        total = rng.randint(1, 4)
        count = 1 if total == 1 else rng.choice((1, 2))
        sizes = [total] if count == 1 else [split := rng.randint(1, total - 1), total - split]
        topics = rng.sample(RU_TOPICS if persona.russian else EN_TOPICS, count)
        channels = [first_channel, rng.choice(_linked_channels(first_channel))][:count]
        return tuple(
            self._conversation(persona, number, channel, topic, size)
            for number, (channel, topic, size) in enumerate(
                zip(channels, topics, sizes, strict=True)
            )
        )

    def _conversation(
        self, persona: Persona, number: int, channel: str, topic: Topic, size: int
    ) -> PlannedConversation:
        rng = self.rng
        order = str(rng.randint(10_000, 99_999))
        follow_ups = [*topic.follow_ups, NUDGES[persona.russian], NUDGES[persona.russian]]
        texts = [topic.opening, *follow_ups[: size - 1]]
        replied = rng.random() < 0.6
        resolve = rng.random() < 0.35
        return PlannedConversation(
            topic=topic.key,
            channel=channel,
            thread_key=f"demo-{persona.index}-t{number}",
            # Only e-mail, web forms and API posts have subjects; chats and SMS do not.
            subject="" if channel in ("sms", "telegram") else topic.subject.format(order=order),
            messages=tuple(text.format(order=order) for text in texts),
            reply=topic.reply.format(order=order) if replied else None,
            note=rng.choice(NOTES[persona.russian]) if rng.random() < 0.3 else None,
            assign=rng.random() < 0.6,
            resolve=resolve,
            pending=not replied and not resolve and rng.random() < 0.4,
        )

    # -- the contact card ---------------------------------------------------------------

    def _source(self) -> dict[str, Any]:
        if self.rng.random() < 0.45:
            return {}
        source = dict(self.rng.choice(SOURCES))
        if source["utm_medium"] != "referral" and self.rng.random() < 0.7:
            source["acquisition_cost"] = round(self.rng.uniform(150, 2500), 2)
        return source

    def _tags(
        self, has_company: bool, topics: set[str], attributes: dict[str, Any]
    ) -> tuple[str, ...]:
        """Tags follow from the rest of the card, so segments by tag make sense in the demo."""
        tags: set[str] = set()
        if has_company:
            tags.add("b2b")
        if topics & {"broken_order", "refund"}:
            tags.add("complaint")
        if "price_list" in topics or self.rng.random() < 0.15:
            tags.add("wholesale")
        if attributes.get("vip"):
            tags.add("vip")
        if self.rng.random() < 0.35:
            tags.add("newsletter")
        return tuple(sorted(tags))

    def _attributes(self, persona: Persona, company: tuple[str, str] | None) -> dict[str, Any]:
        rng = self.rng
        attributes: dict[str, Any] = {}
        if company is not None:
            attributes["industry"] = company[1]
            attributes["staff_size"] = rng.choice((12, 25, 40, 80, 150, 320, 1200))
        elif rng.random() < 0.2:
            attributes["industry"] = rng.choice(INDUSTRIES)
        if rng.random() < 0.5:
            born = date(1965, 1, 1) + timedelta(days=rng.randrange(35 * 365))
            attributes["birthday"] = born.isoformat()
        attributes["region"] = rng.choice(_regions(persona))
        if rng.random() < 0.3:
            attributes["favourite_genre"] = rng.sample(GENRES, rng.randint(1, 2))
        if rng.random() < 0.25:
            attributes["vip"] = rng.random() < 0.5
        return attributes

    def _tasks(self, persona: Persona) -> tuple[PlannedTask, ...]:
        tasks = []
        for _ in range(self.rng.choice((0, 1, 1, 2))):
            task_type, title_ru, title_en = self.rng.choice(TASKS)
            when, done = TASK_SCHEDULE[self.task_count % len(TASK_SCHEDULE)]
            self.task_count += 1
            title = f"{title_ru if persona.russian else title_en}: {persona.name}"
            tasks.append(PlannedTask(task_type, title, when, done))
        return tuple(tasks)


@cache
def _fictional_english_numbers() -> list[tuple[str, int]]:
    """Blocks of fictional UK and US numbers: (prefix, how many digits follow it).

    555-0100 to 555-0199 is fictional in every US area code; taking every area code
    `phonenumbers` accepts gives 45,000 numbers with the UK's 14,000: enough for the
    CLI's largest demo (100,000 clients, half of them English-speaking).
    """
    us = [
        (f"+1{area}55501", 2)
        for area in range(200, 1000)
        if phonenumbers.is_valid_number(phonenumbers.parse(f"+1{area}5550150"))
    ]
    return [(prefix, 3) for prefix in UK_DRAMA_PREFIXES] + us


def _linked_channels(channel: str) -> list[str]:
    """Channels whose messages share an identity kind with `channel` (including itself)."""
    kinds = set(CHANNEL_IDENTITIES[channel])
    return [other for other in CHANNELS if kinds & set(CHANNEL_IDENTITIES[other])]


def _regions(persona: Persona) -> tuple[str, ...]:
    if persona.russian:
        return RU_REGIONS
    return REGIONS_BY_COUNTRY["US" if persona.phone.startswith("+1") else "UK"]


def plan_contacts(count: int, seed: int = SEED) -> list[ContactPlan]:
    """The same `count` clients every time: the plan only depends on the seed."""
    planner = _Planner(seed)
    return [planner.contact(index) for index in range(count)]


# -- applying the plan ------------------------------------------------------------------------


@dataclass
class DemoSummary:
    """What this run added: all zeros when the demo was already there."""

    users: int = 0
    contacts: int = 0
    conversations: int = 0
    messages: int = 0
    tasks: int = 0
    products: int = 0
    deals: int = 0
    documents: int = 0
    payments: int = 0

    def add(self, other: DemoSummary) -> None:
        self.users += other.users
        self.contacts += other.contacts
        self.conversations += other.conversations
        self.messages += other.messages
        self.tasks += other.tasks


@dataclass
class _Seeder:
    """Applies contact plans; several threads share one, so the writer can group-commit them."""

    app: Threadline
    staff: Staff
    now: datetime
    companies: dict[str, UUID] = field(default_factory=dict)
    _company_lock: threading.Lock = field(default_factory=threading.Lock)

    def contact(self, plan: ContactPlan) -> DemoSummary:
        """Ingest the client's messages; add the rest only if this run created the client.

        Only the run that created a client adds replies, notes, tags and tasks to it:
        that is what keeps a second run from appending anything.
        """
        added = DemoSummary()
        created: bool | None = None
        contact_id: UUID | None = None
        conversation_ids: list[UUID] = []
        operator = f"user:{self.staff.operator(plan.persona.russian)}"
        for number, conversation in enumerate(plan.conversations):
            for k, text in enumerate(conversation.messages):
                first = created is None
                result = self.app.ingest(_inbound(plan, number, k, text, first)).value
                created = result.contact_created if first else created
                contact_id = result.contact_id
                added.messages += 0 if result.duplicate else 1
                if created and k == 0 and conversation.reply:
                    # The operator answers the opening message; follow-ups come after it.
                    reply_id = self.app.reply(
                        result.conversation_id, conversation.reply, operator
                    ).value
                    # Seeded history: the answer went out long ago.
                    self.app.record_delivered(reply_id, f"demo-{reply_id.hex[:12]}", "demo")
                    added.messages += 1
            if created:
                conversation_ids.append(result.conversation_id)
                added.messages += self._handle(conversation, result.conversation_id, plan)
        if created and contact_id is not None:
            added.contacts = 1
            added.conversations = len(conversation_ids)
            self._enrich(plan, contact_id)
            added.tasks = self._tasks(plan, contact_id, conversation_ids[0])
        return added

    def _handle(
        self, conversation: PlannedConversation, conversation_id: UUID, plan: ContactPlan
    ) -> int:
        """What the desk did with the conversation; returns how many notes it added."""
        operator_id = self.staff.operator(plan.persona.russian)
        operator = f"user:{operator_id}"
        if conversation.assign:
            manager = f"user:{self.staff.manager_id}"
            self.app.assign_conversation(conversation_id, operator_id, manager)
        if conversation.note:
            self.app.add_note(conversation_id, conversation.note, operator)
        if conversation.resolve:
            self.app.change_conversation_status(conversation_id, "resolved", operator)
        elif conversation.pending:
            self.app.change_conversation_status(conversation_id, "pending", operator)
        return 1 if conversation.note else 0

    def _enrich(self, plan: ContactPlan, contact_id: UUID) -> None:
        """The card an operator fills in: name (SMS has none), tags, attributes, company."""
        operator_id = self.staff.operator(plan.persona.russian)
        self.app.update_contact(
            contact_id,
            f"user:{operator_id}",
            name=plan.persona.name,
            attributes=plan.attributes,
            add_tags=list(plan.tags),
            lifecycle=plan.lifecycle,
            responsible_id=operator_id,
            company_id=self._company(plan.company[0]) if plan.company else False,
        )

    def _company(self, name: str) -> UUID:
        """The company's id, creating it once however many threads ask at the same time."""
        with self._company_lock:
            if name not in self.companies:
                self.companies[name] = self.app.create_company(SETUP_ACTOR, name).value
            return self.companies[name]

    def _tasks(self, plan: ContactPlan, contact_id: UUID, conversation_id: UUID) -> int:
        operator_id = self.staff.operator(plan.persona.russian)
        for task in plan.tasks:
            task_id = self.app.create_task(
                f"user:{self.staff.manager_id}",
                task.title,
                type=task.type,
                due_at=_due_at(task.when, self.now),
                assignee_id=operator_id,
                contact_id=contact_id,
                conversation_id=conversation_id,
            ).value
            if task.done:
                self.app.complete_task(task_id, f"user:{operator_id}")
        return len(plan.tasks)


def _inbound(plan: ContactPlan, number: int, k: int, text: str, first: bool) -> InboundMessage:
    """The provider input for one planned message; attribution rides on the client's first."""
    conversation = plan.conversations[number]
    return InboundMessage.create(
        channel=conversation.channel,
        dedup_key=plan.dedup_key(number, k),
        identities=plan.persona.identities(conversation.channel),
        sender_name="" if conversation.channel == "sms" else plan.persona.name,
        subject=conversation.subject,
        text=text,
        thread_key=conversation.thread_key,
        source=plan.source if first else None,
    )


def _due_at(when: str, now: datetime) -> datetime:
    """Due times relative to the seeding moment, so the task list always looks current."""
    if when == "overdue":
        return now - timedelta(days=2, hours=3)
    if when == "today":
        end_of_day = datetime.combine(now.date(), time(23, 59), tzinfo=UTC)
        return max(min(now + timedelta(hours=3), end_of_day), now + timedelta(minutes=1))
    return now + timedelta(days=3)


# -- set-up -----------------------------------------------------------------------------------


def deal_clients(plans: list[ContactPlan]) -> list[DealClient]:
    """The demo's clients as the sales demo sees them: who, and their first message."""
    return [
        DealClient(
            index=plan.persona.index,
            name=plan.persona.name,
            russian=plan.persona.russian,
            company=plan.company[0] if plan.company else None,
            first_channel=plan.conversations[0].channel,
            first_dedup_key=plan.dedup_key(0, 0),
        )
        for plan in plans
    ]


def client_contacts(app: Threadline, clients: list[DealClient]) -> list[UUID]:
    """The contacts the demo's clients became (through their first message), in plan order."""
    found: list[UUID] = []
    for client in clients:
        if client.first_message_id in app.repository:
            message: Message = app.repository.get(client.first_message_id)
            found.append(message.contact_id)
    return found


def demo_managers(app: Threadline) -> list[UUID]:
    """The demo's sales managers (the deals' owners), in account order."""
    found = (app.user_id_by_email(a.email) for a in DEMO_ACCOUNTS if a.role == "manager")
    return [user_id for user_id in found if user_id is not None]


def ensure_demo_users(app: Threadline, summary: DemoSummary) -> Staff:
    """Create the demo accounts that are missing; the ids come from the log, not the views."""
    ids: dict[str, UUID] = {}
    for account in DEMO_ACCOUNTS:
        user_id = app.user_id_by_email(account.email)
        if user_id is None:
            user_id, _token = app.create_user(
                account.email,
                account.role,
                SETUP_ACTOR,
                name=account.name,
                password=DEMO_PASSWORD,
                locale=account.locale,
            ).value
            summary.users += 1
        ids[account.email] = user_id
    return Staff(
        manager_id=ids[MANAGER_EMAIL],
        operator_ids={russian: ids[email] for russian, email in OPERATOR_EMAIL.items()},
    )


def ensure_demo_attributes(app: Threadline) -> None:
    """Define the demo's attributes that are missing, leaving existing definitions alone."""
    registry = app.attribute_registry()
    existing = set(registry.definitions) if registry is not None else set()
    for definition in DEMO_ATTRIBUTES:
        if f"{definition.scope}:{definition.key}" not in existing:
            app.define_attribute(definition, SETUP_ACTOR)


def existing_companies(runtime: Runtime) -> dict[str, UUID]:
    """Companies by name, from the views (the log has no index by name)."""
    found: dict[str, UUID] = {}
    page = 100
    offset = 0
    while rows := runtime.queries.companies(limit=page, offset=offset):
        for row in rows:
            found.setdefault(row["name"], UUID(str(row["id"])))
        offset += page
    return found


def sync_views(runtime: Runtime) -> None:
    """Let the views show everything recorded so far, whether or not they follow the log.

    When this process does not run the views (or they lag), it catches them up itself:
    the runner tolerates another worker applying the same page.
    """
    target = runtime.app.recorder.max_notification_id()
    if not runtime.wait_for_views(target):
        runtime.runner.catch_up()


DEMO_INBOX = "demo-sandbox"


def ensure_demo_inbox(runtime: Runtime) -> None:
    """A sandbox inbox, so that replies in the demo are "delivered" to a file, not to anyone."""
    if runtime.channels.inbox(DEMO_INBOX) is None:
        runtime.channels.configure(
            DEMO_INBOX,
            "sandbox",
            "Demo sandbox (replies go to var/sandbox-outbox.jsonl)",
            {"path": "var/sandbox-outbox.jsonl"},
            actor="demo",
        )


def seed_demo(
    runtime: Runtime,
    contacts: int = 60,
    progress: Callable[[int, int], None] | None = None,
) -> DemoSummary:
    """Fill the store with demo accounts, clients and activity; safe to run again.

    `progress(done, total)` is called after each client. Returns what this run
    added; the views are caught up when it returns.
    """
    summary = DemoSummary()
    staff = ensure_demo_users(runtime.app, summary)
    ensure_demo_attributes(runtime.app)
    ensure_demo_inbox(runtime)
    seed_defaults(runtime.app, actor="demo")
    sync_views(runtime)  # so that companies made by an earlier run are found by name
    seeder = _Seeder(runtime.app, staff, datetime.now(UTC), existing_companies(runtime))
    plans = plan_contacts(contacts)
    # Clients are independent, so a few are seeded at once and the group-commit writer
    # saves their commands together (about 1.4 times faster than one after another).
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="demo") as pool:
        for done, added in enumerate(pool.map(seeder.contact, plans), start=1):
            summary.add(added)
            if progress is not None:
                progress(done, len(plans))
    sales = seed_sales(
        runtime.app,
        deal_clients(plans),
        seeder.companies,
        demo_managers(runtime.app),
        seeder.now,
        SETUP_ACTOR,
    )
    summary.products, summary.deals = sales.products, sales.deals
    summary.tasks += sales.tasks
    managers = demo_managers(runtime.app)
    sources = seed_sources(runtime.app, deal_clients(plans), managers, seeder.now, SETUP_ACTOR)
    summary.deals += sources.touch_deals  # the won deals after calls, campaigns, rule messages
    sync_views(runtime)
    money = seed_documents(runtime, sales.catalogue, seeder.companies, seeder.now, SETUP_ACTOR)
    summary.documents, summary.payments = money.documents, money.payments
    # past inbound contacts of the demo's own clients, for the channels and clients reports
    seed_inbound_history(runtime, seeder.now, client_contacts(runtime.app, deal_clients(plans)))
    # the service report's own clients (e-mail requests of the last working day)
    seed_service(runtime.app, seeder.now, list(staff.operator_ids.values()), SETUP_ACTOR)
    seed_sales_plans(runtime, demo_managers(runtime.app), seeder.now, SETUP_ACTOR)
    seed_segments(runtime.app, SETUP_ACTOR)  # saved segments (services/demo_segments.py)
    # Demo clients' messages are history: a trigger runner that has not run yet starts after them.
    runtime.triggers.begin_after_history()
    return summary
