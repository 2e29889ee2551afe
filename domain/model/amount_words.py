"""Amounts and numbers in words, as Russian accounting documents write them.

An invoice, an act or a contract repeats its total in words ("Пятьдесят семь тысяч девятьсот
два рубля 14 копеек") so that a figure cannot be altered by a stroke of the pen. The rules
followed here are the ones Russian accountants check:

- the whole part is in words, the minor part (kopecks, cents) in figures, always with as many
  digits as the currency's minor unit ("00 копеек", "01 копейка"): words for kopecks would
  add nothing a forger could not also change;
- the amount is first rounded to the currency's minor unit (half away from zero, the same
  rule as every other figure of a document, see `money.round_money`), so the words always
  agree with the figures printed next to them;
- the noun agrees with the number (1 рубль, 2 рубля, 5 рублей, 11 рублей, 21 рубль) and the
  number with the noun's gender (одна тысяча, две тысячи; один миллион; одна иена);
- the text starts with a capital letter; a negative amount (a refund) starts with "Минус".

English follows the same layout ("Fifty-seven thousand nine hundred two roubles 14
kopecks"), without "and", with 21-99 hyphenated. A currency without its own words here is
written as the number in words, the minor part as a fraction and the ISO code
("Сто двадцать три 45/100 GBP"), which is how banks write foreign amounts they do not name.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.money import (
    MAX_AMOUNT,
    clean_currency,
    exponent,
    round_money,
    to_decimal,
)

LANGUAGES = ("ru", "en")
LIMIT = 10**15
"""Numbers up to 999 999 999 999 999: the largest amount the domain accepts (`MAX_AMOUNT`)."""


def plural_ru(n: int, one: str, few: str, many: str) -> str:
    """The Russian form of a noun after the number `n` (1 рубль, 2 рубля, 5 рублей).

    The form depends on the last two digits only: 11-14 always take the "many" form
    (одиннадцать рублей, сто двенадцать рублей), otherwise a last digit of 1 takes "one",
    2-4 take "few", and the rest (0, 5-9) take "many".
    """
    n = abs(n)
    if n % 100 in (11, 12, 13, 14):
        return many
    if n % 10 == 1:
        return one
    if n % 10 in (2, 3, 4):
        return few
    return many


# --- Russian numbers -------------------------------------------------------------------------

_RU_UNITS = ("", "один", "два", "три", "четыре", "пять", "шесть", "семь", "восемь", "девять")
_RU_UNITS_FEMININE = ("", "одна", "две", *_RU_UNITS[3:])
_RU_TEENS = (
    "десять",
    "одиннадцать",
    "двенадцать",
    "тринадцать",
    "четырнадцать",
    "пятнадцать",
    "шестнадцать",
    "семнадцать",
    "восемнадцать",
    "девятнадцать",
)
_RU_TENS = (
    "",
    "",
    "двадцать",
    "тридцать",
    "сорок",
    "пятьдесят",
    "шестьдесят",
    "семьдесят",
    "восемьдесят",
    "девяносто",
)
_RU_HUNDREDS = (
    "",
    "сто",
    "двести",
    "триста",
    "четыреста",
    "пятьсот",
    "шестьсот",
    "семьсот",
    "восемьсот",
    "девятьсот",
)
# (one, few, many, feminine) for 10^3, 10^6, 10^9, 10^12: тысяча is feminine, the rest masculine.
_RU_SCALES = (
    ("тысяча", "тысячи", "тысяч", True),
    ("миллион", "миллиона", "миллионов", False),
    ("миллиард", "миллиарда", "миллиардов", False),
    ("триллион", "триллиона", "триллионов", False),
)


def _ru_triple(n: int, feminine: bool) -> list[str]:
    """Words of 1..999; the gender shows only in 1 and 2 (один/одна, два/две)."""
    words = [_RU_HUNDREDS[n // 100]]
    rest = n % 100
    if 10 <= rest < 20:
        words.append(_RU_TEENS[rest - 10])
    else:
        words.append(_RU_TENS[rest // 10])
        words.append((_RU_UNITS_FEMININE if feminine else _RU_UNITS)[rest % 10])
    return [word for word in words if word]


def _ru_number(n: int, feminine: bool) -> str:
    if n == 0:
        return "ноль"
    groups = _groups(n)
    words: list[str] = []
    for power in range(len(groups) - 1, -1, -1):
        group = groups[power]
        if not group:
            continue
        if power == 0:
            words += _ru_triple(group, feminine)
        else:
            one, few, many, scale_feminine = _RU_SCALES[power - 1]
            words += [*_ru_triple(group, scale_feminine), plural_ru(group, one, few, many)]
    return " ".join(words)


# --- English numbers -------------------------------------------------------------------------

_EN_UNITS = (
    "",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
)
_EN_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_EN_SCALES = ("thousand", "million", "billion", "trillion")


def _en_triple(n: int) -> list[str]:
    """Words of 1..999 without "and" (the accounting style: "nine hundred two")."""
    words = [f"{_EN_UNITS[n // 100]} hundred"] if n >= 100 else []
    rest = n % 100
    if rest >= 20:
        tens, unit = divmod(rest, 10)
        words.append(f"{_EN_TENS[tens]}-{_EN_UNITS[unit]}" if unit else _EN_TENS[tens])
    elif rest:
        words.append(_EN_UNITS[rest])
    return words


def _en_number(n: int) -> str:
    if n == 0:
        return "zero"
    groups = _groups(n)
    words: list[str] = []
    for power in range(len(groups) - 1, -1, -1):
        group = groups[power]
        if group:
            words += _en_triple(group)
            if power:
                words.append(_EN_SCALES[power - 1])
    return " ".join(words)


def _groups(n: int) -> list[int]:
    """Groups of three digits, the lowest first: 57902 -> [902, 57]."""
    groups = []
    while n:
        n, group = divmod(n, 1000)
        groups.append(group)
    return groups


def _language(language: str) -> str:
    """ "ru", "ru-RU", "ru_RU" and "RU" all mean Russian; only ru and en are written."""
    code = str(language or "").strip().lower()[:2]
    if code not in LANGUAGES:
        raise InvalidInput("language", f"amounts in words are written in {', '.join(LANGUAGES)}")
    return code


def number_in_words(n: int, language: str, feminine: bool = False) -> str:
    """`n` in words, in lower case ("двадцать одна", "twenty-one"), for quantities in contracts.

    `feminine` agrees the number with a feminine noun ("одна тонна", "две единицы"); the
    thousands are always feminine ("две тысячи"). English has no gender and ignores it.
    """
    code = _language(language)
    if isinstance(n, bool) or not isinstance(n, int):
        raise InvalidInput("number", "expected a whole number")
    if abs(n) >= LIMIT:
        raise InvalidInput("number", "numbers in words go up to 999 999 999 999 999")
    text = _ru_number(abs(n), feminine) if code == "ru" else _en_number(abs(n))
    if n < 0:
        return ("минус " if code == "ru" else "minus ") + text
    return text


# --- Currencies ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Noun:
    """A currency unit's words: the three Russian forms, its gender, the English forms."""

    ru: tuple[str, str, str]
    en: tuple[str, str]
    feminine: bool = False

    def russian(self, n: int) -> str:
        return plural_ru(n, *self.ru)

    def english(self, n: int) -> str:
        return self.en[0] if n == 1 else self.en[1]


_KOPECK = _Noun(("копейка", "копейки", "копеек"), ("kopeck", "kopecks"), feminine=True)
_CENT = _Noun(("цент", "цента", "центов"), ("cent", "cents"))

# code -> (major unit, minor unit); a currency whose exponent is 0 has no minor unit.
_CURRENCIES: dict[str, tuple[_Noun, _Noun | None]] = {
    "RUB": (_Noun(("рубль", "рубля", "рублей"), ("rouble", "roubles")), _KOPECK),
    "USD": (_Noun(("доллар США", "доллара США", "долларов США"), ("dollar", "dollars")), _CENT),
    "EUR": (
        _Noun(("евро", "евро", "евро"), ("euro", "euros")),
        _Noun(("евроцент", "евроцента", "евроцентов"), ("cent", "cents")),
    ),
    "CNY": (
        _Noun(("юань", "юаня", "юаней"), ("yuan", "yuan")),
        _Noun(("фэнь", "фэня", "фэней"), ("fen", "fen")),
    ),
    "KZT": (
        _Noun(("тенге", "тенге", "тенге"), ("tenge", "tenge")),
        _Noun(("тиын", "тиына", "тиынов"), ("tiyn", "tiyn")),
    ),
    "BYN": (
        _Noun(
            ("белорусский рубль", "белорусских рубля", "белорусских рублей"),
            ("Belarusian rouble", "Belarusian roubles"),
        ),
        _KOPECK,
    ),
    "UAH": (
        _Noun(("гривна", "гривны", "гривен"), ("hryvnia", "hryvnias"), feminine=True),
        _KOPECK,
    ),
    "JPY": (_Noun(("иена", "иены", "иен"), ("yen", "yen"), feminine=True), None),
}


def amount_in_words(amount: Decimal, currency: str, language: str) -> str:
    """The amount as a document writes it under its figures, e.g.
    ``amount_in_words(Decimal("57902.14"), "RUB", "ru")`` ->
    "Пятьдесят семь тысяч девятьсот два рубля 14 копеек".

    Rounded to the currency's minor unit first, so that the words match the printed figure.
    """
    code = _language(language)
    currency = clean_currency(currency)
    amount = to_decimal(amount, "amount")  # a string or an int from a template works too
    places = exponent(currency)
    rounded = round_money(amount, currency)
    if abs(rounded) >= MAX_AMOUNT:
        raise InvalidInput("amount", "amounts in words go up to 999 999 999 999 999")
    units = int(abs(rounded).scaleb(places))
    whole, minor = divmod(units, 10**places)
    nouns = _CURRENCIES.get(currency)
    if code == "ru":
        feminine = nouns is not None and nouns[0].feminine
        words = _ru_number(whole, feminine)
    else:
        words = _en_number(whole)
    parts = [words]
    if nouns is None:
        if places:
            parts.append(f"{minor:0{places}d}/{10**places}")
        parts.append(currency)
    else:
        major_noun, minor_noun = nouns
        parts.append(major_noun.russian(whole) if code == "ru" else major_noun.english(whole))
        if places and minor_noun is not None:
            noun = minor_noun.russian(minor) if code == "ru" else minor_noun.english(minor)
            parts += [f"{minor:0{places}d}", noun]
    text = " ".join(parts)
    if units and rounded < 0:
        text = ("минус " if code == "ru" else "minus ") + text
    return text[0].upper() + text[1:]
