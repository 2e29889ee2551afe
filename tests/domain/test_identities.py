"""Identity normalisation: the same person must always produce the same identity."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.identities import (
    IdentityKind,
    normalise_email,
    normalise_identity,
    normalise_phone,
)


def test_email_is_lower_cased_and_validated() -> None:
    assert normalise_email("  Anna.Smirnova@Example.COM ") == "anna.smirnova@example.com"
    with pytest.raises(InvalidInput) as error:
        normalise_email("not-an-address")
    assert error.value.field == "email"


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+7 (916) 123-45-67", None, "+79161234567"),
        ("8 916 123 45 67", "RU", "+79161234567"),
        ("+44 7911 123456", None, "+447911123456"),
        ("(202) 555-0143", "US", "+12025550143"),
    ],
)
def test_phone_becomes_e164(raw: str, region: str | None, expected: str) -> None:
    assert normalise_phone(raw, region) == expected


@pytest.mark.parametrize("raw", ["", "12", "+7 000", "call me", "+" + "9" * 45])
def test_invalid_phone_is_rejected_with_field(raw: str) -> None:
    with pytest.raises(InvalidInput) as error:
        normalise_phone(raw)
    assert error.value.field == "phone"


def test_telegram_and_web_ids() -> None:
    assert normalise_identity("telegram", " 00123 ").value == "123"
    assert normalise_identity(IdentityKind.WEB, "v_1.a:b-c").value == "v_1.a:b-c"
    with pytest.raises(InvalidInput):
        normalise_identity("telegram", "-5")
    with pytest.raises(InvalidInput):
        normalise_identity("web", "has space")
    with pytest.raises(InvalidInput):
        normalise_identity("fax", "1")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_any_phone_text_is_either_e164_or_a_clear_rejection(raw: str) -> None:
    """Open input: never a crash, and whatever is accepted is a valid E.164 number."""
    try:
        value = normalise_phone(raw, "RU")
    except InvalidInput as error:
        assert error.field == "phone"
        return
    assert value.startswith("+")
    assert phonenumbers.is_valid_number(phonenumbers.parse(value))
    assert normalise_phone(value) == value  # idempotent


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["RU", "GB", "US", "DE"]),
    st.integers(min_value=0, max_value=10**6),
)
def test_formats_of_one_number_normalise_to_one_identity(region: str, seed: int) -> None:
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    assert example is not None
    e164 = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
    formats = [
        phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
        phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL),
        e164,
    ]
    chosen = formats[seed % len(formats)]
    assert normalise_phone(chosen, region) == e164


@settings(max_examples=200, deadline=None)
@given(st.emails())
def test_valid_emails_normalise_idempotently(address: str) -> None:
    try:
        value = normalise_email(address)
    except InvalidInput:
        return  # hypothesis emails include forms email-validator refuses (e.g. special TLDs)
    assert value == value.lower()
    assert normalise_email(value) == value
