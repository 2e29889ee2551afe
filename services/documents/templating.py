"""Document templates: the message-template sandbox, with the document context's schema.

A document (an invoice, an act, a УПД ...) is HTML rendered from a template a
business may edit, so it gets everything message templates have
(`threadline.triggers.templates`): the immutable sandbox, the rendering budget,
and the save-time check of every name against a schema — here `DOCUMENT_SCHEMA`,
the context described in the documents contract, with *typed lists*: in
``{% for line in lines %}`` the check knows `line` has the keys of a line item, so
``{{ line.nmae }}`` is refused when the template is saved, with its line and a
hint, not when the accountant issues the invoice.

What differs from messages, and why:

* HTML only, autoescaped: a client's name with ``<`` in it is text, not markup.
* A larger budget: a 10,000-line invoice must render (`MAX_DOCUMENT_STEPS`,
  `MAX_DOCUMENT_OUTPUT`, `MAX_DOCUMENT_SECONDS`, measured in the tests); a
  template is still stopped before it can hold the server.
* Formatting filters by the document's language (`money`, `qty`, `date`,
  `date_long`, `percent`, `amount_words`), because accounting forms have fixed
  conventions (``57 902,14``, ``07.12.2026``, "без НДС") that a template author
  should not re-implement with string tricks.
"""

# ruff: noqa: RUF001

from __future__ import annotations

import functools
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from jinja2 import pass_context
from jinja2.exceptions import TemplateSyntaxError
from jinja2.meta import find_undeclared_variables
from jinja2.runtime import Context, Undefined

from threadline.domain.model.money import exponent
from threadline.triggers.templates import (
    LEAF,
    MOMENT,
    Items,
    RenderBudget,
    TemplateError,
    check_source,
    render_failure,
    sandbox_environment,
)

MAX_DOCUMENT_SOURCE = 200_000  # characters of one document template
# Measured with the shipped templates: a 10,000-line invoice renders 1.9 M characters in
# 0.6 M steps (0.8 s), a 10,000-line УПД 4 M characters in 0.85 M steps (1.2 s).
MAX_DOCUMENT_OUTPUT = 20_000_000  # characters of one rendered document
MAX_DOCUMENT_STEPS = 5_000_000  # the rendering budget of one document
MAX_DOCUMENT_SECONDS = 20.0  # wall-clock backstop of one render

# -- the schema: the documents contract (briefs: documents-context) ---------------------------

_BANK = dict.fromkeys(("bank_name", "bik", "account", "correspondent_account"), LEAF)
PARTY: dict[str, Any] = {
    **dict.fromkeys(
        (
            "name",
            "legal_form",
            "inn",
            "kpp",
            "ogrn",
            "legal_address",
            "postal_address",
            "phone",
            "email",
            "signatory",
            "accountant",
        ),
        LEAF,
    ),
    "bank": _BANK,
}
LINE: dict[str, Any] = dict.fromkeys(
    (
        "number",
        "name",
        "sku",
        "unit",
        "quantity",
        "price",
        "discount",
        "net",
        "vat_rate",
        "vat",
        "total",
    ),
    LEAF,
)
DOCUMENT_SCHEMA: dict[str, Any] = {
    "kind": LEAF,
    "language": LEAF,
    "document": {
        **dict.fromkeys(("number", "series", "display_number", "title", "currency", "notes"), LEAF),
        "issued_on": MOMENT,
        "due_on": MOMENT,
        "valid_until": MOMENT,
    },
    "seller": PARTY,
    "buyer": PARTY,
    "lines": Items(LINE),
    "totals": {
        **dict.fromkeys(("net", "vat", "total", "vat_included", "has_vat"), LEAF),
        "vat_rates": Items({"rate": LEAF, "vat": LEAF}),
    },
    "amount_in_words": LEAF,
    "deal": {"id": LEAF, "title": LEAF},
    "contract": {
        "number": LEAF,
        "signed_on": MOMENT,
        "starts_on": MOMENT,
        "ends_on": MOMENT,
    },
}

# -- formatting ---------------------------------------------------------------------------------

NBSP = "\u00a0"
MONTHS_EN = tuple(
    [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ]
)
MONTHS_RU_GENITIVE = tuple(
    [
        "января",
        "февраля",
        "марта",
        "апреля",
        "мая",
        "июня",
        "июля",
        "августа",
        "сентября",
        "октября",
        "ноября",
        "декабря",
    ]
)


def _language(context: Context) -> str:
    return "en" if context.get("language") == "en" else "ru"


def _decimal(value: Any) -> Decimal | None:
    """A number from a template value; None for an absent or non-numeric one."""
    if value is None or isinstance(value, Undefined | bool) or value == "":
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def format_number(number: Decimal, language: str, places: int | None = None) -> str:
    """Grouped thousands and the language's decimal mark: ru ``57 902,14``, en ``57,902.14``.
    `places` None keeps the number's own digits (without trailing zeros)."""
    if places is None:
        number = number.normalize()
        text = format(number, "f")
    else:
        text = format(number, f".{places}f")
    sign = "-" if text.startswith("-") else ""
    whole, _, fraction = text.lstrip("-").partition(".")
    groups: list[str] = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    groups.insert(0, whole)
    thousands, mark = (",", ".") if language == "en" else (NBSP, ",")
    grouped = thousands.join(groups)
    return f"{sign}{grouped}{mark}{fraction}" if fraction else f"{sign}{grouped}"


def _places(number: Decimal, currency: str) -> int:
    """The currency's minor digits, or more when a unit price is finer (0.0035 RUB)."""
    try:
        minor = exponent(currency)
    except Exception:
        minor = 2
    own = -int(number.normalize().as_tuple().exponent)
    return max(minor, own)


@pass_context
def money_filter(context: Context, value: Any, currency: Any = None) -> str:
    number = _decimal(value)
    if number is None:
        return ""
    document = context.get("document")
    code = str(currency or (document.get("currency") if isinstance(document, Mapping) else ""))
    return format_number(number, _language(context), _places(number, code or "RUB"))


@pass_context
def qty_filter(context: Context, value: Any) -> str:
    number = _decimal(value)
    return "" if number is None else format_number(number, _language(context))


def _as_date(value: Any) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


@pass_context
def date_filter(context: Context, value: Any) -> str:
    day = _as_date(value)
    if day is None:
        return ""
    if _language(context) == "en":
        return f"{day.day} {MONTHS_EN[day.month - 1]} {day.year}"
    return f"{day.day:02d}.{day.month:02d}.{day.year}"


@pass_context
def date_long_filter(context: Context, value: Any) -> str:
    day = _as_date(value)
    if day is None:
        return ""
    if _language(context) == "en":
        return f"{day.day} {MONTHS_EN[day.month - 1]} {day.year}"
    return f"{day.day} {MONTHS_RU_GENITIVE[day.month - 1]} {day.year} г."


@pass_context
def percent_filter(context: Context, value: Any) -> str:
    """A VAT rate: ``20%``; None is a line without VAT (an absent value prints nothing)."""
    if value is None:
        return "no VAT" if _language(context) == "en" else "без НДС"
    number = _decimal(value)
    return "" if number is None else f"{format_number(number, _language(context))}%"


@pass_context
def amount_words_filter(context: Context, value: Any, currency: Any = None) -> str:
    """An amount in words by accounting rules (the domain's `amount_in_words`)."""
    number = _decimal(value)
    if number is None:
        return ""
    # Imported here: the words module is the domain's, and a template that never spells
    # an amount should not depend on it being importable.
    from threadline.domain.model.amount_words import amount_in_words

    document = context.get("document")
    code = str(currency or (document.get("currency") if isinstance(document, Mapping) else ""))
    return str(amount_in_words(number, code or "RUB", _language(context)))


DOCUMENT_FILTERS: dict[str, Any] = {
    "money": money_filter,
    "qty": qty_filter,
    "date": date_filter,
    "date_long": date_long_filter,
    "percent": percent_filter,
    "amount_words": amount_words_filter,
}


ENVIRONMENT = sandbox_environment("html", DOCUMENT_FILTERS)

# -- validation and rendering -----------------------------------------------------------------


def validate_document_template(source: str) -> None:
    """Raise `TemplateError` (with the line) unless `source` parses and names only values of
    the document context, through its typed lists, and only known filters."""
    if not isinstance(source, str) or not source.strip():
        raise TemplateError("", "", "a document template needs some text")
    if len(source) > MAX_DOCUMENT_SOURCE:
        raise TemplateError("", "", f"at most {MAX_DOCUMENT_SOURCE} characters")
    check_source(ENVIRONMENT, source, DOCUMENT_SCHEMA)


def document_budget() -> RenderBudget:
    return RenderBudget(
        max_steps=MAX_DOCUMENT_STEPS,
        seconds=MAX_DOCUMENT_SECONDS,
        max_output=MAX_DOCUMENT_OUTPUT,
    )


@functools.lru_cache(maxsize=64)
def _compiled(source: str) -> Any:
    tree = ENVIRONMENT.parse(source)
    unknown = set(find_undeclared_variables(tree)) - set(DOCUMENT_SCHEMA) - set(ENVIRONMENT.globals)
    if unknown:
        raise TemplateError("", "", f"unknown variable {sorted(unknown)[0]!r}")
    return ENVIRONMENT.from_string(source)


def document_context(context: Mapping[str, Any]) -> dict[str, Any]:
    """Every name of the schema present: mappings as given ({} when absent), lists as lists;
    a key a mapping lacks renders as "" (the sandbox's absent value)."""
    values: dict[str, Any] = {}
    for name, spec in DOCUMENT_SCHEMA.items():
        value = context.get(name)
        if isinstance(spec, dict):
            values[name] = value if isinstance(value, Mapping) else {}
        elif isinstance(spec, Items):
            values[name] = list(value) if isinstance(value, list | tuple) else []
        else:
            values[name] = "" if value is None else value
    return values


def render_html(source: str, context: Mapping[str, Any], budget: RenderBudget | None = None) -> str:
    """`source` rendered with `context` in the sandbox under the document budget; every
    failure is a `TemplateError` (with the line when the template is at fault)."""
    budget = budget or document_budget()
    try:
        with budget.active():
            result: str = _compiled(source).render(document_context(context))
    except TemplateError:
        raise
    except TemplateSyntaxError as error:
        raise TemplateError("", "", error.message or "syntax error", error.lineno) from None
    except RecursionError:
        raise TemplateError("", "", "nested too deeply") from None
    except Exception as error:  # anything a template does wrong is its error, never a 500
        raise render_failure(error) from None
    if len(result) > budget.max_output:
        raise TemplateError("", "", f"renders more than {budget.max_output} characters")
    return result
