"""Requisites: the check digits of ИНН, ОГРН, ОГРНИП and bank accounts, and what each legal form
may have.

The known-valid numbers are real ones (Sberbank, Yandex, T-Bank) or worked out by hand in the
comments; the property tests generate numbers with the check digits computed here, by the
published rules, and change one digit at a time.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from threadline.domain.model.company import Company
from threadline.domain.model.errors import InvalidInput
from threadline.domain.model.requisites import (
    BankAccount,
    RequisiteSet,
    check_fits,
    clean_client_group,
    clean_roles,
    correspondent_account_is_valid,
    inn_is_valid,
    ogrn_is_valid,
    parse_requisites,
    settlement_account_is_valid,
)

SBER_BIK = "044525225"
SBER_CORRESPONDENT = "30101810400000000225"
# 40702810938000000001 with the БИК's last three digits "225" in front, weights 7,1,3 repeated:
# 2·7 + 2·1 + 5·3 + 4·7 + 0·1 + 7·3 + 0·7 + 2·1 + 8·3 + 1·7 + 0·1 + 9·3 + 3·7 + 8·1 + (zeros) + 1·1
# = 14+2+15+28+0+21+0+2+24+7+0+27+21+8+1 = 170, a multiple of 10.
SBER_ACCOUNT = "40702810938000000001"
TBANK_BIK = "044525974"
TBANK_CORRESPONDENT = "30101810145250000974"
TBANK_ACCOUNT = "40802810400000012345"


def field_of(error: pytest.ExceptionInfo[InvalidInput]) -> str:
    return error.value.field


# -- known numbers ---------------------------------------------------------------------------


def test_known_valid_numbers_pass() -> None:
    # 7707083893 (Sberbank): 7·2+7·4+0·10+7·3+0·5+8·9+3·4+8·6+9·8 = 267; 267 mod 11 = 3.
    assert inn_is_valid("7707083893")
    assert inn_is_valid("7736207543")  # Yandex
    # 500100732259: first check 5·7+0+0+1·10+0+0+7·9+3·4+2·6+2·8 = 148, 148 mod 11 = 5;
    # second 5·3+0+0+1·4+0+0+7·5+3·9+2·4+2·6+5·8 = 141, 141 mod 11 = 9.
    assert inn_is_valid("500100732259")
    assert ogrn_is_valid("1027700132195")  # Sberbank: 102770013219 mod 11 = 5
    assert ogrn_is_valid("1027700229193")  # Yandex
    assert ogrn_is_valid("304500116000157")  # an ОГРНИП: 30450011600015 mod 13 = 7
    assert settlement_account_is_valid(SBER_BIK, SBER_ACCOUNT)
    assert correspondent_account_is_valid(SBER_BIK, SBER_CORRESPONDENT)
    assert settlement_account_is_valid(TBANK_BIK, TBANK_ACCOUNT)
    assert correspondent_account_is_valid(TBANK_BIK, TBANK_CORRESPONDENT)


def test_known_wrong_numbers_fail() -> None:
    assert not inn_is_valid("7707083894")
    assert not inn_is_valid("500100732258")
    assert not inn_is_valid("770708389")  # 9 digits
    assert not ogrn_is_valid("1027700132196")
    assert not ogrn_is_valid("304500116000158")
    assert not settlement_account_is_valid(SBER_BIK, "40702810938000000002")
    # The right account at the wrong bank: the key depends on the БИК.
    assert not settlement_account_is_valid(TBANK_BIK, SBER_ACCOUNT)
    assert not correspondent_account_is_valid(TBANK_BIK, SBER_CORRESPONDENT)
    assert not correspondent_account_is_valid(SBER_BIK, SBER_ACCOUNT)  # not a 301 account


def sber_set(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "label": "Основной",
        "inn": "7707 083 893",  # spaces as people type them
        "kpp": "773601001",
        "ogrn": "1027700132195",
        "legal_address": "Москва,  ул. Вавилова, 19",
        "bank_accounts": [
            {
                "bank_name": "ПАО Сбербанк",
                "bik": SBER_BIK,
                "account": SBER_ACCOUNT,
                "correspondent_account": SBER_CORRESPONDENT,
            }
        ],
    }
    data.update(changes)
    return data


def test_a_set_is_cleaned_and_keeps_its_state() -> None:
    (parsed,) = parse_requisites([sber_set()])
    assert parsed.inn == "7707083893"
    assert parsed.legal_address == "Москва, ул. Вавилова, 19"
    assert parsed.bank_accounts == (
        BankAccount("ПАО Сбербанк", SBER_BIK, SBER_ACCOUNT, SBER_CORRESPONDENT),
    )
    assert RequisiteSet.from_state(parsed.state()) == parsed


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"inn": "7707083894"}, "requisites.0.inn", "check digit"),
        ({"inn": "77070838"}, "requisites.0.inn", "10 digits"),
        ({"inn": "77O7083893"}, "requisites.0.inn", "only digits"),
        ({"kpp": "77360100"}, "requisites.0.kpp", "4 digits"),
        ({"ogrn": "1027700132196"}, "requisites.0.ogrn", "check digit"),
        (
            {"bank_accounts": [{"bik": "04452522", "account": SBER_ACCOUNT}]},
            "requisites.0.bank_accounts.0.bik",
            "9 digits",
        ),
        (
            {"bank_accounts": [{"bik": SBER_BIK, "account": "40702810938000000002"}]},
            "requisites.0.bank_accounts.0.account",
            "БИК",
        ),
        (
            {"bank_accounts": [{"bik": TBANK_BIK, "account": SBER_ACCOUNT}]},
            "requisites.0.bank_accounts.0.account",
            "БИК",
        ),
        (
            {
                "bank_accounts": [
                    {"bik": SBER_BIK, "account": SBER_ACCOUNT, "correspondent_account": "123"}
                ]
            },
            "requisites.0.bank_accounts.0.correspondent_account",
            "301",
        ),
        (
            {
                "bank_accounts": [
                    {
                        "bik": SBER_BIK,
                        "account": SBER_ACCOUNT,
                        "correspondent_account": TBANK_CORRESPONDENT,
                    }
                ]
            },
            "requisites.0.bank_accounts.0.correspondent_account",
            "БИК",
        ),
    ],
)
def test_a_wrong_number_names_its_field(changes: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_requisites([sber_set(**changes)])
    assert field_of(refused) == field
    assert message in refused.value.message


# -- legal forms -----------------------------------------------------------------------------

PERSON_INN = "500100732259"
OGRNIP = "304500116000157"


@pytest.mark.parametrize(
    ("form", "data", "field"),
    [
        ("company", {"label": "no ИНН"}, "requisites.0.inn"),
        ("company", {"inn": PERSON_INN}, "requisites.0.inn"),
        ("company", {"inn": "7707083893", "ogrn": OGRNIP}, "requisites.0.ogrn"),
        ("sole_trader", {"inn": "7707083893"}, "requisites.0.inn"),
        ("sole_trader", {"inn": PERSON_INN, "kpp": "773601001"}, "requisites.0.kpp"),
        ("sole_trader", {"inn": PERSON_INN, "ogrn": "1027700132195"}, "requisites.0.ogrn"),
        ("private_person", {"inn": "7707083893"}, "requisites.0.inn"),
        ("private_person", {"ogrn": OGRNIP}, "requisites.0.ogrn"),
        (None, {"inn": "7707083893"}, "legal_form"),
    ],
)
def test_each_legal_form_refuses_what_it_cannot_have(
    form: str | None, data: dict[str, Any], field: str
) -> None:
    sets = parse_requisites([data])
    with pytest.raises(InvalidInput) as refused:
        check_fits(form, sets)
    assert field_of(refused) == field


@pytest.mark.parametrize(
    ("form", "data"),
    [
        ("company", {"inn": "7707083893", "kpp": "773601001", "ogrn": "1027700132195"}),
        ("company", {"inn": "7707083893"}),
        ("sole_trader", {"inn": PERSON_INN, "ogrn": OGRNIP}),
        ("sole_trader", {"inn": PERSON_INN}),
        ("private_person", {"inn": PERSON_INN}),
        ("private_person", {"legal_address": "Тверь", "label": "без ИНН"}),
    ],
)
def test_each_legal_form_takes_what_it_may_have(form: str, data: dict[str, Any]) -> None:
    check_fits(form, parse_requisites([data]))


def test_roles_and_group_are_cleaned() -> None:
    assert clean_roles(["partner", "client", "partner"]) == ["client", "partner"]
    with pytest.raises(InvalidInput) as refused:
        clean_roles(["customer"])
    assert field_of(refused) == "roles"
    assert clean_client_group("  крупный   опт ") == "крупный опт"


def test_the_aggregate_checks_form_and_requisites_as_they_will_stand() -> None:
    company = Company(name="ИП Иванов", actor="test", correlation_id="c")
    person_set = parse_requisites([{"inn": PERSON_INN, "ogrn": OGRNIP}])
    company.revise("test", "c", legal_form="sole_trader", requisites=person_set)
    assert (company.legal_form, company.requisites) == ("sole_trader", person_set)
    # The form alone cannot change under requisites it may not have...
    with pytest.raises(InvalidInput) as refused:
        company.revise("test", "c", legal_form="company")
    assert field_of(refused) == "requisites.0.inn"
    assert company.legal_form == "sole_trader"
    # ...but both together can, and nothing is recorded for values that stay the same.
    org_set = parse_requisites([{"inn": "7707083893"}])
    version = company.version
    company.revise("test", "c", name="ИП Иванов", legal_form="company", requisites=org_set)
    assert company.version == version + 2
    assert [type(e).__name__ for e in company.collect_events()][-2:] == [
        "CompanyLegalFormChanged",
        "CompanyRequisitesChanged",
    ]


# -- properties --------------------------------------------------------------------------------

W10 = (2, 4, 10, 3, 5, 9, 4, 6, 8)
W11 = (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
W12 = (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)
W_ACCOUNT = ((7, 1, 3) * 8)[:23]  # the 3 digits of the bank, then the 20 of the account


def remainder(digits: str, weights: tuple[int, ...]) -> int:
    return sum(int(d) * w for d, w in zip(digits, weights, strict=False)) % 11


def with_inn10_check(body: str) -> str:
    return body + str(remainder(body, W10) % 10)


def with_inn12_checks(body: str) -> str:
    eleven = body + str(remainder(body, W11) % 10)
    return eleven + str(remainder(eleven, W12) % 10)


def with_account_key(bank_part: str, account: str) -> str:
    """`account` with its 9th digit (the key, weight 3 in the 23 digits) set to fit."""
    rest = bank_part + account[:8] + "0" + account[9:]
    total = sum(int(d) * w for d, w in zip(rest, W_ACCOUNT, strict=True))
    key = (-total * 7) % 10  # 3 · 7 = 21 ≡ 1 (mod 10): 7 is 3's inverse
    return account[:8] + str(key) + account[9:]


def digits(n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=n, max_size=n)


def changed(number: str, place: int, shift: int) -> str:
    """`number` with the digit at `place` replaced by another (shift 1..9 modulo 10)."""
    new = (int(number[place]) + shift) % 10
    return number[:place] + str(new) + number[place + 1 :]


@given(digits(9), st.integers(0, 9), st.integers(1, 9))
def test_inn10_generated_passes_and_a_changed_digit_fails(
    body: str, place: int, shift: int
) -> None:
    inn = with_inn10_check(body)
    assert inn_is_valid(inn)
    other = changed(inn, place, shift)
    # The official rule takes the remainder modulo 11 and then modulo 10, so the one change
    # it cannot see moves the remainder between 0 and 10 (both give the check digit 0).
    blind = place < 9 and {remainder(inn, W10), remainder(other, W10)} == {0, 10}
    assert inn_is_valid(other) == blind


@given(digits(10), st.integers(0, 11), st.integers(1, 9))
def test_inn12_generated_passes_and_a_changed_digit_fails(
    body: str, place: int, shift: int
) -> None:
    inn = with_inn12_checks(body)
    assert inn_is_valid(inn)
    other = changed(inn, place, shift)
    if inn_is_valid(other):  # only where both remainders moved between 0 and 10
        assert place < 10
        assert {remainder(inn, W11), remainder(other, W11)} == {0, 10}
        assert {remainder(inn, W12), remainder(other, W12)} == {0, 10}


@given(digits(12), st.integers(0, 12), st.integers(1, 9))
def test_ogrn_generated_passes_and_a_changed_digit_fails(body: str, place: int, shift: int) -> None:
    ogrn = body + str(int(body) % 11 % 10)
    assert ogrn_is_valid(ogrn)
    other = changed(ogrn, place, shift)
    blind = place < 12 and {int(ogrn[:12]) % 11, int(other[:12]) % 11} == {0, 10}
    assert ogrn_is_valid(other) == blind


@given(digits(9), digits(20), st.integers(0, 19), st.integers(1, 9))
def test_account_generated_passes_and_any_changed_digit_fails(
    bik: str, raw: str, place: int, shift: int
) -> None:
    account = with_account_key(bik[-3:], raw)
    assert settlement_account_is_valid(bik, account)
    # Weights 7, 1 and 3 are prime to 10: every single-digit change moves the sum's last digit.
    assert not settlement_account_is_valid(bik, changed(account, place, shift))


@given(digits(9), digits(14), st.integers(3, 19), st.integers(1, 9))
def test_correspondent_account_generated_passes_and_any_changed_digit_fails(
    bik: str, raw: str, place: int, shift: int
) -> None:
    account = with_account_key("0" + bik[4:6], "301" + raw + bik[-3:])
    assert correspondent_account_is_valid(bik, account)
    assert not correspondent_account_is_valid(bik, changed(account, place, shift))


@given(st.text(max_size=30))
def test_any_typed_inn_is_either_clean_digits_or_a_named_refusal(text: str) -> None:
    try:
        (parsed,) = parse_requisites([{"inn": text}])
    except InvalidInput as refused:
        assert refused.field == "requisites.0.inn"
        return
    assert parsed.inn == "" or (parsed.inn.isdigit() and inn_is_valid(parsed.inn))
