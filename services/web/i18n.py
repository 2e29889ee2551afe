"""Russian and English for the web app: Babel catalogues, one Jinja2 environment per locale.

The `.po` catalogues in `locales/` are compiled in memory at start (no build
step). Each locale has its own Jinja2 environment with gettext installed and
Babel's formatting filters (`datetime`, `date`, `number`, `money`), so two
operators with different languages can be served at the same time.
`pybabel extract -F babel.cfg -o messages.pot services/web` refreshes the catalogue.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import Any

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
from babel.support import Translations
from jinja2 import Environment, FileSystemLoader, select_autoescape

HERE = Path(__file__).parent
LOCALES = ("en", "ru")
DEFAULT_LOCALE = "en"


def _translations(locale: str) -> Translations:
    path = HERE / "locales" / locale / "LC_MESSAGES" / "messages.po"
    if not path.exists():
        return Translations()
    with path.open("rb") as source:
        catalog = read_po(source, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


def _parse_time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value).replace("Z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def filters_for(locale: str) -> dict[str, Callable[..., str]]:
    babel_locale = Locale.parse(locale)

    def fmt_datetime(value: Any, form: str = "short") -> str:
        parsed = _parse_time(value)
        return "" if parsed is None else format_datetime(parsed, form, locale=babel_locale)

    def fmt_date(value: Any, form: str = "medium") -> str:
        if isinstance(value, date) and not isinstance(value, datetime):
            return format_date(value, form, locale=babel_locale)
        parsed = _parse_time(value)
        if parsed is None:
            try:
                return format_date(date.fromisoformat(str(value)), form, locale=babel_locale)
            except ValueError:
                return str(value or "")
        return format_date(parsed.date(), form, locale=babel_locale)

    def fmt_number(value: Any) -> str:
        return "" if value is None else format_decimal(value, locale=babel_locale)

    def fmt_money(value: Any, currency: str = "RUB") -> str:
        if value in (None, ""):
            return ""
        try:
            return format_currency(Decimal(str(value)), currency, locale=babel_locale)
        except (InvalidOperation, ValueError):
            return str(value)

    def fmt_number_safe(value: Any) -> str:
        try:
            return fmt_number(value)
        except (InvalidOperation, ValueError, TypeError):
            return str(value)

    return {
        "datetime": fmt_datetime,
        "date": fmt_date,
        "number": fmt_number_safe,
        "money": fmt_money,
    }


@cache
def environment(locale: str) -> Environment:
    """The template environment of one locale (autoescaped, gettext, Babel filters)."""
    env = Environment(
        loader=FileSystemLoader(str(HERE / "templates")),
        autoescape=select_autoescape(["html", "xml"], default=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(_translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(filters_for(locale))
    env.globals["locale"] = locale
    return env


def gettext(locale: str) -> Callable[[str], str]:
    """`_` for messages made in Python (flash messages, errors)."""
    translations = _translations_cached(locale)
    return translations.gettext


@cache
def _translations_cached(locale: str) -> Translations:
    return _translations(locale)


def pick_locale(wanted: str | None) -> str:
    return wanted if wanted in LOCALES else DEFAULT_LOCALE
