"""Demo marketing: spend entries for the demo's sources, and touches before some won deals.

The sources report needs what advertising cost, and the touches report needs won deals
that a campaign, a rule's message or a call came before. So `seed_sources` records:

* a month's spend entry for each paid source of the demo (yandex, google, telegram; the
  partner blog is free) in each of the last six months, the current one included, with
  amounts from a seeded generator; ids from their content, so a second run adds nothing;
* for six demo clients: a mailing campaign's message (the first three), a message of the
  shipped rule "welcome-web-lead" (clients 2 to 5) and a logged call (the even ones), then
  a deal each won right after, so "sales after a campaign, after calls" are not empty.
  Those deals have fixed ids: when the first exists, an earlier run did all of it.

Like the rest of the demo it is planned from a seeded generator and safe to run again.
"""

# The demo is half Russian on purpose: Cyrillic letters that look Latin are not a mistake here.
# ruff: noqa: RUF001

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import NAMESPACE_URL, UUID, uuid5

from threadline.domain.commands.application import Threadline
from threadline.domain.commands.marketing_spend import SpendEntry, clean_spend, imported_spend_id
from threadline.domain.model.campaign import CampaignSend, recipient_id_for
from threadline.domain.model.history_clock import recorded_at
from threadline.domain.model.inbound import InboundMessage
from threadline.domain.model.message import Message
from threadline.domain.model.money import Money
from threadline.domain.model.pipeline import seeded_pipeline_id
from threadline.domain.model.rule import rule_id_for
from threadline.services.demo_sales import DealClient

SOURCES_SEED = 2026
MONTHS = 6
PAID_SOURCES = (
    ("yandex", "wholesale-search", 18_000, 42_000),
    ("google", "price-list-q2", 9_000, 25_000),
    ("telegram", "b2b-channel", 5_000, 15_000),
)
TOUCH_NAMESPACE = uuid5(NAMESPACE_URL, "https://threadline.dev/demo-touches")
TEMPLATE = "demo-spring-newsletter"
RULE = "welcome-web-lead"
TOUCHED_CLIENTS = 6
# Leads who wrote in through the site's call-back form (the sources report's "By web form")
FORM_LEADS = (
    ("Алексей Морозов", "a.morozov@example.ru", 12),
    ("Nina Park", "nina.park@example.com", 33),
    ("Ольга Лебедева", "olga.lebedeva@example.ru", 54),
)


@dataclass
class SourcesSummary:
    spend_entries: int = 0
    touch_deals: int = 0


def _month_starts(today: date, months: int) -> list[date]:
    first = today.replace(day=1)
    starts = [first]
    for _ in range(months - 1):
        first = (first - timedelta(days=1)).replace(day=1)
        starts.append(first)
    return sorted(starts)


def _month_end(first: date) -> date:
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def plan_spend(today: date) -> list[SpendEntry]:
    rng = random.Random(SOURCES_SEED)
    entries = []
    for first in _month_starts(today, MONTHS):
        for source, campaign, low, high in PAID_SOURCES:
            amount = Money.of(rng.randrange(low, high, 500), "RUB")
            note = f"{source} {first:%m.%Y}"
            entries.append(clean_spend(source, campaign, first, _month_end(first), amount, note))
    return entries


def touch_deal_id(number: int) -> UUID:
    return uuid5(TOUCH_NAMESPACE, f"deal-{number}")


def seed_sources(
    app: Threadline,
    clients: list[DealClient],
    managers: list[UUID],
    now: datetime,
    actor: str,
) -> SourcesSummary:
    summary = SourcesSummary()
    for index, (name, email, days_ago) in enumerate(FORM_LEADS):
        lead = InboundMessage.create(
            channel="web",
            dedup_key=f"demo-form-lead-{index}",
            identities=[("email", email)],
            sender_name=name,
            text="Перезвоните мне, пожалуйста" if index != 1 else "Please call me back",
            source={"channel": "web", "form": "callback"},
        )
        with recorded_at(now - timedelta(days=days_ago)):
            _ = app.ingest(lead).value  # wait: the report reads it
    spend = [(imported_spend_id(entry), entry) for entry in plan_spend(now.date())]
    summary.spend_entries = app.import_marketing_spend(spend, actor).value
    chosen = [c for c in clients if c.first_message_id in app.repository][:TOUCHED_CLIENTS]
    if not chosen or not managers or touch_deal_id(0) in app.repository:
        return summary
    contacts: list[tuple[UUID, UUID]] = []  # (contact, conversation) of each chosen client
    for client in chosen:
        message: Message = app.repository.get(client.first_message_id)
        contacts.append((message.contact_id, message.conversation_id))

    app.save_template(
        TEMPLATE,
        "Весенняя рассылка",
        {"default": {"subject": "Весенние цены", "text": "Новый прайс-лист уже готов."}},
        actor,
    )
    campaign = app.create_campaign(
        "Весенняя рассылка / Spring newsletter", TEMPLATE, {}, "email", None, actor
    ).value
    app.start_campaign(campaign, actor)
    mailed = [contact for contact, _ in contacts[:3]]
    app.queue_campaign_recipients(campaign, [(c, "email") for c in mailed], str(mailed[-1]), actor)
    app.complete_campaign_audience(campaign, actor)
    for contact in mailed:
        send = CampaignSend(
            recipient_id_for(campaign, contact),
            contact,
            "email",
            {"subject": "Весенние цены", "text": "Новый прайс-лист уже готов."},
        )
        app.send_campaign_message(send, "campaigns")
    app.finish_campaign(campaign, "", actor)

    rule = rule_id_for(RULE)
    pipeline = seeded_pipeline_id("new-clients")
    for number, (contact, conversation) in enumerate(contacts):
        if 2 <= number <= 5:
            app.reply(
                conversation,
                "Спасибо за заявку! Мы свяжемся с вами сегодня.",
                f"rule:{rule}",
                message_id=uuid5(TOUCH_NAMESPACE, f"rule-message-{number}"),
            )
        manager = managers[number % len(managers)]
        if number % 2 == 0:
            app.log_call(
                f"user:{manager}", "outbound", "answered", 180 + 60 * number, contact_id=contact
            )
        deal = app.create_deal(
            actor,
            f"Повторный заказ #{number + 1}",
            pipeline,
            contact_id=contact,
            manager_id=manager,
            # a repeat order costs us 60 % of its price: the reports show a real gross profit
            lines=[
                {
                    "name": f"Повторный заказ #{number + 1}",
                    "quantity": 1,
                    "price": str(25_000 + 7_500 * number),
                    "cost": str((25_000 + 7_500 * number) * 6 // 10),
                    "vat": "none",
                }
            ],
            deal_id=touch_deal_id(number),
        ).value
        app.win_deal(deal, actor)
        summary.touch_deals += 1
    return summary
