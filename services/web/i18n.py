"""Russian and English for the web app: Babel catalogues, one Jinja2 environment per locale.

The `.po` catalogues in `locales/` are compiled in memory at start (no build
step). Each locale has its own Jinja2 environment with gettext installed and
Babel's formatting filters (`datetime`, `date`, `number`, `money`), so two
operators with different languages can be served at the same time. Times are
stored in UTC and shown in the time zone of the user the page is for (the
`user` in the template's context: their own, else `THREADLINE_TIMEZONE`).
`pybabel extract -F babel.cfg -o messages.pot services/web` refreshes the catalogue.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, date, datetime, tzinfo
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
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape

from threadline.projections.base import FORGOTTEN_NAME
from threadline.services.web.local_time import zone

HERE = Path(__file__).parent
LOCALES = ("en", "ru")
DEFAULT_LOCALE = "en"


def catalogue_files(locale: str) -> list[Path]:
    """The locale's catalogues: ``messages.po`` and one per area of the app (``deals.po``, ...),
    so that areas built at the same time never edit one file; later files win on a clash."""
    folder = HERE / "locales" / locale / "LC_MESSAGES"
    main = folder / "messages.po"
    others = sorted(p for p in folder.glob("*.po") if p != main)
    return [p for p in (main, *others) if p.exists()]


def _translations(locale: str) -> Translations:
    paths = catalogue_files(locale)
    if not paths:
        return Translations()
    with paths[0].open("rb") as source:
        catalog = read_po(source, locale=locale)
    for path in paths[1:]:
        with path.open("rb") as source:
            for message in read_po(source, locale=locale):
                if message.id:
                    catalog[message.id] = message
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


def _zone_of(context: Any) -> tzinfo:
    """The time zone of the user a page is rendered for (the views store UTC)."""
    user = context.get("user") if context is not None else None
    return zone(str(getattr(user, "timezone", "") or ""))


def filters_for(locale: str) -> dict[str, Callable[..., str]]:
    babel_locale = Locale.parse(locale)

    @pass_context
    def fmt_datetime(context: Any, value: Any, form: str = "short") -> str:
        parsed = _parse_time(value)
        if parsed is None:
            return ""
        return format_datetime(parsed, form, tzinfo=_zone_of(context), locale=babel_locale)

    @pass_context
    def fmt_date(context: Any, value: Any, form: str = "medium") -> str:
        if isinstance(value, date) and not isinstance(value, datetime):
            return format_date(value, form, locale=babel_locale)
        if isinstance(value, str) and len(value) == 10:
            # a calendar date ("2026-12-12": a due date), not a moment: no time zone moves it
            try:
                return format_date(date.fromisoformat(value), form, locale=babel_locale)
            except ValueError:
                pass
        parsed = _parse_time(value)
        if parsed is None:
            try:
                return format_date(date.fromisoformat(str(value)), form, locale=babel_locale)
            except ValueError:
                return str(value or "")
        local = parsed.astimezone(_zone_of(context))
        return format_date(local.date(), form, locale=babel_locale)

    def fmt_number(value: Any, exact: bool = False) -> str:
        """`exact` keeps every decimal (an exchange rate of 61.2345), not Babel's three."""
        if value is None:
            return ""
        return format_decimal(value, locale=babel_locale, decimal_quantization=not exact)

    def fmt_money(value: Any, currency: str = "RUB", exact: bool = False) -> str:
        """`exact` keeps digits finer than the minor unit (a unit price of 0.0035 RUB)."""
        if value in (None, ""):
            return ""
        try:
            return format_currency(
                Decimal(str(value)), currency, locale=babel_locale, decimal_quantization=not exact
            )
        except (InvalidOperation, ValueError):
            return str(value)

    def fmt_number_safe(value: Any, exact: bool = False) -> str:
        try:
            return fmt_number(value, exact)
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
    translations = _translations(locale)
    forgotten = translations.gettext(FORGOTTEN_NAME)

    def finalize(value: Any) -> Any:
        """A forgotten client's name is a value the views write; every page shows it in the
        page's language, wherever it appears."""
        return forgotten if value == FORGOTTEN_NAME else value

    env = Environment(
        loader=FileSystemLoader(str(HERE / "templates")),
        autoescape=select_autoescape(["html", "xml"], default=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=finalize,
    )
    env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(filters_for(locale))
    env.globals["locale"] = locale
    env.globals["time_zones"] = time_zones
    return env


# The zones offered in the header's picker (`POST /me/timezone` takes any IANA name);
# the user's own zone is added when it is not one of these.
COMMON_TIME_ZONES = (
    "UTC",
    "Europe/London",
    "Europe/Berlin",
    "Europe/Kaliningrad",
    "Europe/Moscow",
    "Europe/Samara",
    "Asia/Yekaterinburg",
    "Asia/Omsk",
    "Asia/Novosibirsk",
    "Asia/Krasnoyarsk",
    "Asia/Irkutsk",
    "Asia/Yakutsk",
    "Asia/Vladivostok",
    "Asia/Magadan",
    "Asia/Kamchatka",
    "Asia/Almaty",
    "Asia/Tashkent",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "America/New_York",
    "America/Chicago",
    "America/Los_Angeles",
)


def time_zones(current: str) -> list[str]:
    return (
        list(COMMON_TIME_ZONES) if current in COMMON_TIME_ZONES else [current, *COMMON_TIME_ZONES]
    )


def gettext(locale: str) -> Callable[[str], str]:
    """`_` for messages made in Python (flash messages, errors)."""
    translations = _translations_cached(locale)
    return translations.gettext


@cache
def _translations_cached(locale: str) -> Translations:
    return _translations(locale)


def pick_locale(wanted: str | None) -> str:
    return wanted if wanted in LOCALES else DEFAULT_LOCALE
