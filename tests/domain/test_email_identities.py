"""E-mail identities from company networks: special-use domains and address literals."""

from __future__ import annotations

import pytest

from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.identities import normalise_email


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Scanner@Office.LOCAL", "scanner@office.local"),
        ("root@localhost", "root@localhost"),
        ("ci@build.test", "ci@build.test"),
        ("nas@router.home.arpa", "nas@router.home.arpa"),
        ("app@svc.corp.internal", "app@svc.corp.internal"),
        ("demo@shop.example", "demo@shop.example"),
        ("a@пример.local", "a@пример.local"),
        ("dev@[192.0.2.1]", "dev@[192.0.2.1]"),
        ("dev@[ipv6:2001:DB8:0::1]", "dev@[IPv6:2001:db8::1]"),
    ],
)
def test_special_use_domains_and_address_literals_are_accepted(raw: str, expected: str) -> None:
    assert normalise_email(raw) == expected
    assert normalise_email(expected) == expected  # idempotent


@pytest.mark.parametrize(
    "raw",
    ["a@x.invalid", "a@hidden.onion", "a@1.0.0.127.in-addr.arpa", "a@.local", "a@[300.1.1.1]"],
)
def test_names_no_mail_can_come_from_stay_refused(raw: str) -> None:
    with pytest.raises(InvalidInput) as error:
        normalise_email(raw)
    assert error.value.field == "email"
    assert "private-mail" not in error.value.message  # the stand-in never shows
