"""The sales both the turnover and the ABC tests read (every line without VAT: net = price x qty).

Clients: company Альфа (group "wholesale", contact Иван), company Бета (group "retail",
contact Пётр), company Гамма (no group, no contact), contacts Дарья and Жанна (no company).
Managers Анна and Борис. Products Widget and Gadget; "Service" lines name no product.

March 2026 (the period), each won at noon UTC on the day given:

| deal | day | client | manager | cur | line: qty x price (cost/unit)   | net   | profit |
|------|-----|--------|---------|-----|---------------------------------|-------|--------|
| D1   | 10  | Альфа  | Анна    | RUB | Widget 2 x 2,000 (1,500)        | 4,000 | 1,000  |
| D2   | 11  | Альфа  | Анна    | RUB | Service 1 x 1,000 (1,000)       | 1,000 | 0      |
| D3   | 12  | Бета   | Борис   | RUB | Gadget 1 x 3,000 (1,000)        | 3,000 | 2,000  |
| D4   | 13  | Гамма  | Анна    | RUB | Widget 1 x 1,500 (900)          | 1,500 | 600    |
| D5   | 14  | Дарья  | Борис   | RUB | Service 1 x 500 (600)           | 500   | -100   |
| D6   | 15  | Альфа  | Анна    | USD | Widget 1 x 900 (400)            | 900   | 500    |
| D7   | 16  | Дарья  | Борис   | USD | Service 1 x 100 (0)             | 100   | 100    |

February 2026 (the earlier period):

| D8   | 10  | Гамма  | Анна    | RUB | Widget 4 x 1,500 (900)          | 6,000 | 2,400  |
| D9   | 11  | Бета   | Борис   | RUB | Gadget 1 x 3,000 (1,000)        | 3,000 | 2,000  |
| D10  | 12  | Альфа  | Анна    | RUB | Service 1 x 1,000 (0)           | 1,000 | 1,000  |
| D11  | 13  | Альфа  | Анна    | USD | Widget 1 x 500 (0)              | 500   | 500    |

Not won, so in no figure: D12 (Бета, 10,000 RUB, open) and D13 (Гамма, 2,000 RUB, lost
on 20 March). D1 has utm_campaign "spring".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from threadline.domain.model.history_clock import recorded_at
from threadline.domain.model.pipeline import seeded_pipeline_id
from threadline.services.runtime import Runtime

NEW = seeded_pipeline_id("new-clients")
MARCH = ("2026-03-01T00:00:00.000000Z", "2026-04-01T00:00:00.000000Z")
FEBRUARY = ("2026-02-01T00:00:00.000000Z", "2026-03-01T00:00:00.000000Z")


@dataclass
class Sales:
    anna: str
    boris: str
    alfa: str
    beta: str
    gamma: str
    ivan: str
    petr: str
    darya: str
    zhanna: str
    widget: str
    gadget: str
    deals: dict[str, str]


def noon(month: int, day: int) -> datetime:
    return datetime(2026, month, day, 12, 0, tzinfo=UTC)


def build_sales(runtime: Runtime) -> Sales:
    app = runtime.app
    with recorded_at(datetime(2026, 1, 5, 9, 0, tzinfo=UTC)):
        _ = app.seed_pipelines("test").value
        anna, _ = app.create_user("anna@example.com", "manager", "test", name="Анна").value
        boris, _ = app.create_user("boris@example.com", "manager", "test", name="Борис").value
        alfa = app.create_company("test", "Альфа", client_group="wholesale").value
        beta = app.create_company("test", "Бета", client_group="retail").value
        gamma = app.create_company("test", "Гамма").value
        ivan = app.create_contact("test", "Иван").value
        _ = app.update_contact(ivan, "test", company_id=alfa).value
        petr = app.create_contact("test", "Пётр").value
        _ = app.update_contact(petr, "test", company_id=beta).value
        darya = app.create_contact("test", "Дарья").value
        zhanna = app.create_contact("test", "Жанна").value
        widget = app.create_product("test", "Widget", "2000", cost="1500").value
        gadget = app.create_product("test", "Gadget", "3000", cost="1000").value

    def line(qty: int, price: int, cost: int, product: UUID | None = None) -> dict[str, Any]:
        found: dict[str, Any] = {
            "quantity": qty,
            "price": str(price),
            "cost": str(cost),
            "vat": "none",
        }
        if product is None:
            found["name"] = "Service"
        else:
            found["product_id"] = str(product)
        return found

    def won(
        name: str,
        month: int,
        day: int,
        manager: UUID,
        lines: list[dict[str, Any]],
        currency: str = "RUB",
        **client: Any,
    ) -> str:
        with recorded_at(noon(month, day).replace(hour=9)):
            deal = app.create_deal(
                "test", name, NEW, manager_id=manager, currency=currency, lines=lines, **client
            ).value
        with recorded_at(noon(month, day)):
            _ = app.win_deal(deal, "test").value
        return str(deal)

    deals = {
        "D1": won(
            "D1",
            3,
            10,
            anna,
            [line(2, 2000, 1500, widget)],
            contact_id=ivan,
            source={"utm_campaign": "spring"},
        ),
        "D2": won("D2", 3, 11, anna, [line(1, 1000, 1000)], contact_id=ivan),
        "D3": won("D3", 3, 12, boris, [line(1, 3000, 1000, gadget)], company_id=beta),
        "D4": won("D4", 3, 13, anna, [line(1, 1500, 900, widget)], company_id=gamma),
        "D5": won("D5", 3, 14, boris, [line(1, 500, 600)], contact_id=darya),
        "D6": won("D6", 3, 15, anna, [line(1, 900, 400, widget)], "USD", company_id=alfa),
        "D7": won("D7", 3, 16, boris, [line(1, 100, 0)], "USD", contact_id=darya),
        "D8": won("D8", 2, 10, anna, [line(4, 1500, 900, widget)], company_id=gamma),
        "D9": won("D9", 2, 11, boris, [line(1, 3000, 1000, gadget)], company_id=beta),
        "D10": won("D10", 2, 12, anna, [line(1, 1000, 0)], company_id=alfa),
        "D11": won("D11", 2, 13, anna, [line(1, 500, 0, widget)], "USD", company_id=alfa),
    }
    with recorded_at(noon(3, 5)):
        _ = app.create_deal("test", "D12", NEW, company_id=beta, amount="10000").value
        d13 = app.create_deal("test", "D13", NEW, company_id=gamma, amount="2000").value
    with recorded_at(noon(3, 20)):
        _ = app.lose_deal(d13, "Too expensive", "test").value
    assert runtime.wait_for_views(app.recorder.max_notification_id(), timeout=60)
    return Sales(
        anna=str(anna),
        boris=str(boris),
        alfa=str(alfa),
        beta=str(beta),
        gamma=str(gamma),
        ivan=str(ivan),
        petr=str(petr),
        darya=str(darya),
        zhanna=str(zhanna),
        widget=str(widget),
        gadget=str(gadget),
        deals=deals,
    )
