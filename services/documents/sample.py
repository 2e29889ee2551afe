"""A sample document context: what a template preview renders when there is no deal at hand.

The values are made up but shaped like real ones (an ИНН of ten digits, a bank account
of twenty), so a preview shows how a real invoice will look: column widths, long
addresses, several VAT rates, a line without VAT. `lines` makes the context longer
(the editor's preview uses three; the tests use thousands).
"""

# ruff: noqa: RUF001

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from threadline.domain.model.money import round_money

_PARTIES = {
    "ru": (
        {
            "name": "ООО «Ромашка»",
            "legal_form": "company",
            "inn": "7701234567",
            "kpp": "770101001",
            "ogrn": "1027700000001",
            "legal_address": "125009, г. Москва, ул. Тверская, д. 7, офис 12",
            "postal_address": "125009, г. Москва, ул. Тверская, д. 7, офис 12",
            "bank": {
                "bank_name": "ПАО Сбербанк, г. Москва",
                "bik": "044525225",
                "account": "40702810400000012345",
                "correspondent_account": "30101810400000000225",
            },
            "phone": "+7 495 123-45-67",
            "email": "info@romashka.example",
            "signatory": "Генеральный директор Иванов И. И.",
            "accountant": "Петрова А. С.",
        },
        {
            "name": "ООО «Вектор»",
            "legal_form": "company",
            "inn": "7802345678",
            "kpp": "780201001",
            "ogrn": "1117800000002",
            "legal_address": "191186, г. Санкт-Петербург, Невский пр., д. 28",
            "postal_address": "191186, г. Санкт-Петербург, Невский пр., д. 28",
            "bank": {
                "bank_name": "АО «Т-Банк», г. Москва",
                "bik": "044525974",
                "account": "40702810910000054321",
                "correspondent_account": "30101810145250000974",
            },
            "phone": "+7 812 765-43-21",
            "email": "buh@vector.example",
            "signatory": "Директор Смирнов П. А.",
            "accountant": "",
        },
    ),
    "en": (
        {
            "name": "Daisy Trading Ltd",
            "legal_form": "company",
            "inn": "7701234567",
            "kpp": "770101001",
            "ogrn": "1027700000001",
            "legal_address": "7 Tverskaya St, office 12, Moscow 125009",
            "postal_address": "7 Tverskaya St, office 12, Moscow 125009",
            "bank": {
                "bank_name": "Sberbank, Moscow",
                "bik": "044525225",
                "account": "40702810400000012345",
                "correspondent_account": "30101810400000000225",
            },
            "phone": "+7 495 123-45-67",
            "email": "info@daisy.example",
            "signatory": "CEO Ivan Ivanov",
            "accountant": "Anna Petrova",
        },
        {
            "name": "Vector LLC",
            "legal_form": "company",
            "inn": "7802345678",
            "kpp": "780201001",
            "ogrn": "1117800000002",
            "legal_address": "28 Nevsky Ave, St Petersburg 191186",
            "postal_address": "28 Nevsky Ave, St Petersburg 191186",
            "bank": {
                "bank_name": "T-Bank, Moscow",
                "bik": "044525974",
                "account": "40702810910000054321",
                "correspondent_account": "30101810145250000974",
            },
            "phone": "+7 812 765-43-21",
            "email": "accounts@vector.example",
            "signatory": "Director Peter Smirnov",
            "accountant": "",
        },
    ),
}

_ITEMS = {
    "ru": (
        ("Маршрутизатор RT-1", "RT-1", "шт", "2", "12500.50", "0", "20"),
        ("Настройка сети", "SRV-7", "ч", "1.5", "3000.00", "10", "20"),
        ("Методическое пособие", "BK-2", "шт", "3", "450.00", "0", None),
    ),
    "en": (
        ("Router RT-1", "RT-1", "pcs", "2", "12500.50", "0", "20"),
        ("Network set-up", "SRV-7", "h", "1.5", "3000.00", "10", "20"),
        ("Training manual", "BK-2", "pcs", "3", "450.00", "0", None),
    ),
}


def _line(number: int, item: tuple[Any, ...], currency: str) -> dict[str, Any]:
    name, sku, unit, quantity, price, discount, rate = item
    quantity, price, discount = Decimal(quantity), Decimal(price), Decimal(discount)
    vat_rate = Decimal(rate) if rate is not None else None
    net = round_money(quantity * price * (100 - discount) / 100, currency)
    vat = round_money(net * vat_rate / 100, currency) if vat_rate is not None else Decimal("0.00")
    return {
        "number": number,
        "name": name if number <= len(_ITEMS["ru"]) else f"{name} #{number}",
        "sku": sku,
        "unit": unit,
        "quantity": quantity,
        "price": price,
        "discount": discount,
        "net": net,
        "vat_rate": vat_rate,
        "vat": vat,
        "total": net + vat,
    }


def sample_context(kind: str, language: str, lines: int = 3) -> dict[str, Any]:
    """A full context of the documents contract for (kind, language) with `lines` lines."""
    from threadline.domain.model.amount_words import amount_in_words

    language = "en" if language == "en" else "ru"
    currency = "RUB"
    items = _ITEMS[language]
    rows = [_line(i + 1, items[i % len(items)], currency) for i in range(lines)]
    rates: dict[Decimal, Decimal] = {}
    for row in rows:
        if row["vat_rate"] is not None:
            rates[row["vat_rate"]] = rates.get(row["vat_rate"], Decimal("0")) + row["vat"]
    net = sum((r["net"] for r in rows), Decimal("0.00"))
    vat = sum((r["vat"] for r in rows), Decimal("0.00"))
    total = net + vat
    seller, buyer = _PARTIES[language]
    if kind == "purchase_order":  # the supplier sells to us
        seller, buyer = buyer, seller
    return {
        "kind": kind,
        "language": language,
        "document": {
            "number": 15,
            "series": "С" if language == "ru" else "S",
            "display_number": "С-15" if language == "ru" else "S-15",
            "issued_on": date(2026, 12, 7),
            "due_on": date(2026, 12, 17),
            "title": "",
            "currency": currency,
            "notes": "",
            "valid_until": date(2026, 12, 31),
        },
        "seller": seller,
        "buyer": buyer,
        "lines": rows,
        "totals": {
            "net": net,
            "vat": vat,
            "total": total,
            "vat_included": False,
            "has_vat": bool(rates),
            "vat_rates": [{"rate": rate, "vat": amount} for rate, amount in rates.items()],
        },
        "amount_in_words": amount_in_words(total, currency, language),
        "deal": {"id": "00000000-0000-0000-0000-000000000000", "title": "Network for Vector"},
        "contract": {
            "number": "17/2026",
            "signed_on": date(2026, 11, 2),
            "starts_on": date(2026, 11, 2),
            "ends_on": date(2027, 12, 31),
        },
    }
