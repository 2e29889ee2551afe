"""Amounts in words by Russian accounting rules, in Russian and English.

The tricky numbers are written out by hand (agreement of the noun with 1, 2-4, 5-20, 11-14
and 21; the feminine тысяча; empty groups in millions and billions). Properties check the
rest over the whole range: a small parser written here reads the words back to the number,
kopecks are the two digits of the amount in figures, and the noun takes the form the last
two digits call for.
"""

from __future__ import annotations

import itertools
import re
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from threadline.domain.model.amount_words import amount_in_words, number_in_words, plural_ru
from threadline.domain.model.errors import InvalidInput

D = Decimal

RUB_RU = {
    1: "Один рубль 00 копеек",
    2: "Два рубля 00 копеек",
    5: "Пять рублей 00 копеек",
    11: "Одиннадцать рублей 00 копеек",
    12: "Двенадцать рублей 00 копеек",
    14: "Четырнадцать рублей 00 копеек",
    21: "Двадцать один рубль 00 копеек",
    22: "Двадцать два рубля 00 копеек",
    25: "Двадцать пять рублей 00 копеек",
    101: "Сто один рубль 00 копеек",
    111: "Сто одиннадцать рублей 00 копеек",
    1000: "Одна тысяча рублей 00 копеек",
    2000: "Две тысячи рублей 00 копеек",
    5000: "Пять тысяч рублей 00 копеек",
    21000: "Двадцать одна тысяча рублей 00 копеек",
    1_000_000: "Один миллион рублей 00 копеек",
    2_000_000_000: "Два миллиарда рублей 00 копеек",
    0: "Ноль рублей 00 копеек",
}
RUB_EN = {
    1: "One rouble 00 kopecks",
    2: "Two roubles 00 kopecks",
    5: "Five roubles 00 kopecks",
    11: "Eleven roubles 00 kopecks",
    12: "Twelve roubles 00 kopecks",
    14: "Fourteen roubles 00 kopecks",
    21: "Twenty-one roubles 00 kopecks",
    22: "Twenty-two roubles 00 kopecks",
    25: "Twenty-five roubles 00 kopecks",
    101: "One hundred one roubles 00 kopecks",
    111: "One hundred eleven roubles 00 kopecks",
    1000: "One thousand roubles 00 kopecks",
    2000: "Two thousand roubles 00 kopecks",
    5000: "Five thousand roubles 00 kopecks",
    21000: "Twenty-one thousand roubles 00 kopecks",
    1_000_000: "One million roubles 00 kopecks",
    2_000_000_000: "Two billion roubles 00 kopecks",
    0: "Zero roubles 00 kopecks",
}


@pytest.mark.parametrize(("number", "text"), sorted(RUB_RU.items()))
def test_roubles_in_russian(number: int, text: str) -> None:
    assert amount_in_words(D(number), "RUB", "ru") == text


@pytest.mark.parametrize(("number", "text"), sorted(RUB_EN.items()))
def test_roubles_in_english(number: int, text: str) -> None:
    assert amount_in_words(D(number), "RUB", "en") == text


def test_the_example_of_the_brief_in_both_languages() -> None:
    amount = D("57902.14")
    assert amount_in_words(amount, "RUB", "ru") == (
        "Пятьдесят семь тысяч девятьсот два рубля 14 копеек"
    )
    assert amount_in_words(amount, "RUB", "en") == (
        "Fifty-seven thousand nine hundred two roubles 14 kopecks"
    )


@pytest.mark.parametrize(
    ("amount", "ru", "en"),
    [
        ("0.01", "Ноль рублей 01 копейка", "Zero roubles 01 kopeck"),
        ("0.02", "Ноль рублей 02 копейки", "Zero roubles 02 kopecks"),
        ("1.14", "Один рубль 14 копеек", "One rouble 14 kopecks"),
        ("1.21", "Один рубль 21 копейка", "One rouble 21 kopecks"),
        ("3.10", "Три рубля 10 копеек", "Three roubles 10 kopecks"),
    ],
)
def test_kopecks_are_two_figures_with_the_agreeing_noun(amount: str, ru: str, en: str) -> None:
    assert amount_in_words(D(amount), "RUB", "ru") == ru
    assert amount_in_words(D(amount), "RUB", "en") == en


def test_the_amount_is_rounded_to_kopecks_half_away_from_zero_first() -> None:
    assert amount_in_words(D("1.005"), "RUB", "ru") == "Один рубль 01 копейка"
    assert amount_in_words(D("0.999"), "RUB", "ru") == "Один рубль 00 копеек"
    assert amount_in_words(D("-0.004"), "RUB", "ru") == "Ноль рублей 00 копеек"


def test_a_refund_is_written_with_minus() -> None:
    assert amount_in_words(D("-1500.50"), "RUB", "ru") == (
        "Минус одна тысяча пятьсот рублей 50 копеек"
    )
    assert amount_in_words(D("-21"), "USD", "en") == "Minus twenty-one dollars 00 cents"


def test_empty_groups_of_large_numbers_are_skipped() -> None:
    assert amount_in_words(D(1_000_001), "RUB", "ru") == "Один миллион один рубль 00 копеек"
    assert amount_in_words(D(3_000_002_000), "RUB", "en") == (
        "Three billion two thousand roubles 00 kopecks"
    )
    assert amount_in_words(D("999999999999999.99"), "RUB", "ru").startswith(
        "Девятьсот девяносто девять триллионов"
    )


@pytest.mark.parametrize(
    ("amount", "currency", "ru", "en"),
    [
        ("1", "USD", "Один доллар США 00 центов", "One dollar 00 cents"),
        ("2.01", "USD", "Два доллара США 01 цент", "Two dollars 01 cent"),
        ("5", "USD", "Пять долларов США 00 центов", "Five dollars 00 cents"),
        ("21.05", "EUR", "Двадцать один евро 05 евроцентов", "Twenty-one euros 05 cents"),
        ("1", "EUR", "Один евро 00 евроцентов", "One euro 00 cents"),
        ("2", "CNY", "Два юаня 00 фэней", "Two yuan 00 fen"),
        ("11", "CNY", "Одиннадцать юаней 00 фэней", "Eleven yuan 00 fen"),
        ("1", "KZT", "Один тенге 00 тиынов", "One tenge 00 tiyn"),
        ("2", "BYN", "Два белорусских рубля 00 копеек", "Two Belarusian roubles 00 kopecks"),
        ("2", "UAH", "Две гривны 00 копеек", "Two hryvnias 00 kopecks"),
        ("21", "UAH", "Двадцать одна гривна 00 копеек", "Twenty-one hryvnias 00 kopecks"),
        ("1001", "JPY", "Одна тысяча одна иена", "One thousand one yen"),
        ("123.45", "GBP", "Сто двадцать три 45/100 GBP", "One hundred twenty-three 45/100 GBP"),
        ("7", "KRW", "Семь KRW", "Seven KRW"),
        ("1.5", "KWD", "Один 500/1000 KWD", "One 500/1000 KWD"),
    ],
)
def test_other_currencies(amount: str, currency: str, ru: str, en: str) -> None:
    assert amount_in_words(D(amount), currency, "ru") == ru
    assert amount_in_words(D(amount), currency, "en") == en


def test_a_yen_amount_has_no_minor_part_and_is_rounded_to_whole_yen() -> None:
    assert amount_in_words(D("2.5"), "JPY", "ru") == "Три иены"


def test_regional_language_codes_and_lower_case_currency_are_accepted() -> None:
    assert amount_in_words(D(5), "rub", "ru-RU") == "Пять рублей 00 копеек"
    assert amount_in_words(D(5), "RUB", "en_GB") == "Five roubles 00 kopecks"


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: amount_in_words(D(1), "RUB", "de"), "language"),
        (lambda: amount_in_words(D(1), "рубли", "ru"), "currency"),
        (lambda: amount_in_words(D("1e15"), "RUB", "ru"), "amount"),
        (lambda: amount_in_words(D("999999999999999.995"), "RUB", "ru"), "amount"),
        (lambda: amount_in_words(D("NaN"), "RUB", "ru"), "amount"),
        (lambda: amount_in_words("abc", "RUB", "ru"), "amount"),  # type: ignore[arg-type]
        (lambda: number_in_words(10**15, "ru"), "number"),
        (lambda: number_in_words(True, "ru"), "number"),
    ],
)
def test_bad_input_is_refused_naming_the_field(call: object, field: str) -> None:
    with pytest.raises(InvalidInput) as error:
        call()  # type: ignore[operator]
    assert error.value.field == field


def test_numbers_in_words_for_quantities() -> None:
    assert number_in_words(21, "ru") == "двадцать один"
    assert number_in_words(21, "ru", feminine=True) == "двадцать одна"
    assert number_in_words(2, "ru", feminine=True) == "две"
    assert number_in_words(2002, "ru") == "две тысячи два"
    assert number_in_words(0, "ru") == "ноль"
    assert number_in_words(-12, "ru") == "минус двенадцать"
    assert number_in_words(99, "en") == "ninety-nine"
    assert number_in_words(40, "en") == "forty"
    assert number_in_words(1_000_000, "en") == "one million"


@pytest.mark.parametrize(
    ("n", "form"),
    [
        (0, "many"),
        (1, "one"),
        (2, "few"),
        (4, "few"),
        (5, "many"),
        (11, "many"),
        (12, "many"),
        (14, "many"),
        (21, "one"),
        (22, "few"),
        (111, "many"),
        (112, "many"),
        (1001, "one"),
        (-3, "few"),
    ],
)
def test_plural_ru(n: int, form: str) -> None:
    assert plural_ru(n, "one", "few", "many") == form


# --- reading the words back ------------------------------------------------------------------

_RU_VALUES = {
    "ноль": 0,
    "один": 1,
    "одна": 1,
    "два": 2,
    "две": 2,
    "три": 3,
    "четыре": 4,
    "пять": 5,
    "шесть": 6,
    "семь": 7,
    "восемь": 8,
    "девять": 9,
    "десять": 10,
    "одиннадцать": 11,
    "двенадцать": 12,
    "тринадцать": 13,
    "четырнадцать": 14,
    "пятнадцать": 15,
    "шестнадцать": 16,
    "семнадцать": 17,
    "восемнадцать": 18,
    "девятнадцать": 19,
    "двадцать": 20,
    "тридцать": 30,
    "сорок": 40,
    "пятьдесят": 50,
    "шестьдесят": 60,
    "семьдесят": 70,
    "восемьдесят": 80,
    "девяносто": 90,
    "сто": 100,
    "двести": 200,
    "триста": 300,
    "четыреста": 400,
    "пятьсот": 500,
    "шестьсот": 600,
    "семьсот": 700,
    "восемьсот": 800,
    "девятьсот": 900,
}
_RU_SCALES = {
    "тысяча": 10**3,
    "тысячи": 10**3,
    "тысяч": 10**3,
    "миллион": 10**6,
    "миллиона": 10**6,
    "миллионов": 10**6,
    "миллиард": 10**9,
    "миллиарда": 10**9,
    "миллиардов": 10**9,
    "триллион": 10**12,
    "триллиона": 10**12,
    "триллионов": 10**12,
}
_EN_VALUES = {
    word: value
    for value, word in enumerate(
        [
            "zero",
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
        ]
    )
} | {
    word: 10 * (index + 2)
    for index, word in enumerate(
        ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
    )
}
_EN_SCALES = {"thousand": 10**3, "million": 10**6, "billion": 10**9, "trillion": 10**12}


def words_to_int(words: list[str], language: str) -> int:
    """The inverse of number_in_words: sums groups, multiplying each by its scale word."""
    values, scales = (_RU_VALUES, _RU_SCALES) if language == "ru" else (_EN_VALUES, _EN_SCALES)
    total = group = 0
    for word in words:
        if word in scales:
            total += (group or 1) * scales[word]
            group = 0
        elif word == "hundred":
            group *= 100
        else:
            for piece in word.split("-"):
                group += values[piece]
    return total + group


def split_amount(text: str, language: str) -> tuple[list[str], str, str, str]:
    """(number words, currency noun, kopecks figures, kopecks noun) of a RUB amount."""
    nouns = "рубль|рубля|рублей" if language == "ru" else "rouble|roubles"
    match = re.fullmatch(rf"(.+) ({nouns}) (\d+) (\S+)", text)
    assert match, text
    return match[1].lower().split(), match[2], match[3], match[4]


@given(st.integers(min_value=0, max_value=10**15 - 1), st.integers(min_value=0, max_value=99))
def test_roubles_read_back_to_the_amount(whole: int, kopecks: int) -> None:
    amount = D(whole) + D(kopecks) / 100
    for language in ("ru", "en"):
        text = amount_in_words(amount, "RUB", language)
        assert text and text[0].isupper(), text
        words, noun, figures, kopeck_noun = split_amount(text, language)
        assert words_to_int(words, language) == whole
        assert figures == f"{kopecks:02d}"
        if language == "ru":
            assert noun == plural_ru(whole, "рубль", "рубля", "рублей")
            assert kopeck_noun == plural_ru(kopecks, "копейка", "копейки", "копеек")
        else:
            assert noun == ("rouble" if whole == 1 else "roubles")


@given(st.integers(min_value=-(10**15) + 1, max_value=10**15 - 1), st.booleans())
def test_numbers_read_back(n: int, feminine: bool) -> None:
    for language in ("ru", "en"):
        text = number_in_words(n, language, feminine)
        words = text.split()
        negative = words[0] in ("минус", "minus")
        value = words_to_int(words[1:] if negative else words, language)
        assert (-value if negative else value) == n
        assert text == text.lower()


@given(st.integers(min_value=1, max_value=10**15 - 1))
def test_thousands_are_feminine_and_millions_masculine(n: int) -> None:
    words = number_in_words(n, "ru").split()
    for before, after in itertools.pairwise(words):
        if after.startswith("тысяч"):
            assert before not in ("один", "два")
        if after.startswith(("миллион", "миллиард", "триллион")):
            assert before not in ("одна", "две")
