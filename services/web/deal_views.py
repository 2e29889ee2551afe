"""What the deal pages share: the redirect messages, names of people, durations and money.

The board and list (routes_deals), the deal's page (routes_deal_page) and the new-deal form
(routes_new_deal) are separate modules so that each says one thing; the few helpers more than
one of them needs live here, so that no page module imports another's private pieces.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from babel.dates import format_timedelta
from fastapi.responses import HTMLResponse

from threadline.projections.deals import DealRow, deal
from threadline.services.web.client_deals import amount
from threadline.services.web.deps import WebUser
from threadline.services.web.posted_forms import parse_id

# Messages after a redirect are named by a code in the query string (never free text).
FLASHES = {
    "saved": "Saved.",
    "created": "The deal was created.",
    "moved": "The deal was moved.",
    "won": "The deal was won.",
    "lost": "The deal was lost.",
    "unchanged": "The deal is already in that stage.",
    "task": "The task was created.",
    "call": "The call was logged.",
    # the deal's documents and money (routes_deal_documents)
    "document": "The document was generated.",
    "sent": "The document was sent.",
    "voided": "The document was voided.",
    "contract": "The contract was registered.",
    "orders": "The supplier orders were created.",
    "no_orders": "No supplier order was created: no line has a product with a supplier.",
}


def not_found(user: WebUser, message: str = "") -> HTMLResponse:
    text = message or user._("This deal does not exist.")
    return user.render("error.html", status_code=404, title="404", message=text)


def user_names(user: WebUser) -> dict[str, str]:
    return {str(u["id"]): str(u["name"] or u["email"]) for u in user.runtime.queries.users()}


def actor_name(actor: str, names: dict[str, str]) -> str:
    """Who did it: a user's name for ``user:<id>``, else the actor as recorded (a rule, a channel)."""
    kind, _, rest = actor.partition(":")
    if kind == "user" and rest in names:
        return names[rest]
    return actor


def duration(user: WebUser, seconds: float) -> str:
    """A time in a stage as people say it, in the user's language: "3 days 5 hours"."""
    locale = user.locale
    total = int(max(0.0, seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60

    def say(delta: timedelta) -> str:
        return str(format_timedelta(delta, threshold=1, locale=locale))

    if days:
        parts = [say(timedelta(days=days))]
        if hours:
            parts.append(say(timedelta(hours=hours)))
        return " ".join(parts)
    if hours:
        parts = [say(timedelta(hours=hours))]
        if minutes:
            parts.append(say(timedelta(minutes=minutes)))
        return " ".join(parts)
    if minutes:
        return say(timedelta(minutes=minutes))
    return user._("less than a minute")


def sums(totals_minor: dict[str, int]) -> list[tuple[Decimal, str]]:
    """A column's money, one amount per currency (sorted), never one sum across them."""
    return [(amount(minor, code), code) for code, minor in sorted(totals_minor.items())]


def manager_of(user: WebUser, value: str | None) -> str | None:
    """The board's manager filter: ``mine``, a user's id, or everyone (None)."""
    if value == "mine":
        return user.id
    return parse_id(value or "")


def money_of(state: Any) -> tuple[Decimal, str] | None:
    """A money object of an event's data ({"amount", "currency"}) for the money filter."""
    if isinstance(state, dict) and state.get("amount") not in (None, ""):
        return Decimal(str(state["amount"])), str(state.get("currency") or "RUB")
    return None


def known_deal(user: WebUser, deal_id: str) -> DealRow | None:
    known = parse_id(deal_id)
    return deal(user.runtime.views, known) if known else None
