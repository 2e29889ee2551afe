"""The payments, settlements and contracts API end to end (TestClient over a real runtime on
SQLite: the recording and the views are tested on PostgreSQL too in test_statement_import and
tests/domain/test_money_flow), and the `threadline payments import` command in a real process."""

# ruff: noqa: RUF001

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_runtime
from tests.services.payments_setup import (
    OUR_ACCOUNT,
    ROMASHKA_INN,
    STRANGER_INN,
    World,
    invoice,
    world,
)
from tests.services.server_process import threadline_env, threadline_executable
from tests.services.test_statement_import import DOCUMENTS, spec
from threadline.projections.payments import PaymentFilter, payments_page
from threadline.services.api.app import create_app
from threadline.services.payments.client_bank_exchange import AccountSpec, write_statement
from threadline.services.runtime import Runtime

ADMIN = {"Authorization": "Bearer admin-secret"}
ACCOUNT = AccountSpec(OUR_ACCOUNT, opening_balance=Decimal("10000.00"))
SMALL_BODY = 64_000


@pytest.fixture
def api(sqlite_url: str, tmp_path: Path) -> Iterator[tuple[TestClient, Runtime, World]]:
    runtime = make_runtime(
        sqlite_url,
        admin_token="admin-secret",
        max_body_bytes=SMALL_BODY,
        attachments_dir=str(tmp_path / "files"),
    )
    try:
        w = world(runtime)
        with TestClient(create_app(runtime)) as client:
            yield client, runtime, w
    finally:
        runtime.close()


def user(client: TestClient, role: str) -> dict[str, str]:
    response = client.post("/api/users", json={"email": f"{role}@example.com", "role": role},
                           headers=ADMIN)  # fmt: skip
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def ok(response: Any, code: int = 200) -> Any:
    assert response.status_code == code, response.text
    return response.json()


def money(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "RUB"}


def field_error(response: Any) -> tuple[list[str], str]:
    assert response.status_code == 422, response.text
    (entry,) = response.json()["detail"]
    return entry["loc"], entry["msg"]


# -- one payment ----------------------------------------------------------------------------


def test_a_payment_is_recorded_matched_and_not_recorded_twice(
    api: tuple[TestClient, Runtime, World],
) -> None:
    client, _, w = api
    operator = user(client, "operator")
    body = {
        "direction": "in",
        "amount": "1000.00",
        "paid_on": "2026-12-05",
        "counterparty": {"name": 'ООО "Ромашка"', "inn": ROMASHKA_INN},
        "purpose": "Оплата по счету № СЧ-1 от 01.12.2026",
        "bank_document": {"kind": "Платежное поручение", "number": "101", "date": "2026-12-05"},
        "client_payment_id": "bank-101",
    }
    first = ok(client.post("/api/payments", json=body, headers=operator), 201)
    assert first["recorded"] is True and first["outcome"]["kind"] == "matched"
    paid = first["payment"]
    assert (paid["state"], paid["company_id"], paid["amount"]) == (
        "matched", str(w.romashka), money("1000.00"),
    )  # fmt: skip
    (allocation,) = paid["allocations"]
    assert (allocation["target_label"], allocation["how"]) == ("СЧ-1", "auto")
    assert paid["bank_document"] == {
        "kind": "Платежное поручение", "number": "101", "date": "2026-12-05",
    }  # fmt: skip
    again = ok(client.post("/api/payments", json=body, headers=operator), 200)
    assert again["recorded"] is False and again["payment"]["id"] == paid["id"]
    assert ok(client.get("/api/payments", headers=operator))["total"] == 1
    assert ok(client.get(f"/api/payments/{paid['id']}", headers=operator)) == paid

    auditor = user(client, "auditor")
    assert client.post("/api/payments", json=body, headers=auditor).status_code == 403
    assert ok(client.get("/api/payments", headers=auditor))["total"] == 1


def test_a_payment_naming_its_target_pays_that_target(
    api: tuple[TestClient, Runtime, World],
) -> None:
    client, _, w = api
    body = {
        "direction": "in",
        "amount": "3000.00",
        "paid_on": "2026-12-05",
        "counterparty": {"inn": ROMASHKA_INN},
        "purpose": "аванс",
        "company_id": str(w.romashka),
        "target": {"kind": "invoice", "id": str(w.sch2)},
    }
    made = ok(client.post("/api/payments", json=body, headers=ADMIN), 201)
    assert made["outcome"]["kind"] == "overpaid"
    (allocation,) = made["payment"]["allocations"]
    # without an amount, the invoice takes only what is due; the rest stays unallocated
    assert (allocation["amount"], allocation["how"]) == (money("2500.00"), "manual")
    assert made["payment"]["unallocated"] == money("500.00")
    assert made["payment"]["state"] == "partial"
    outgoing = {**body, "direction": "out", "target": {"kind": "invoice", "id": str(w.sch1)}}
    loc, msg = field_error(client.post("/api/payments", json=outgoing, headers=ADMIN))
    assert loc[-1] == "target_kind" and "never a client's invoice" in msg


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"amount": "abc"}, "amount"),
        ({"amount": "1.005"}, "amount"),
        ({"amount": "-5"}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"currency": "рубли"}, "currency"),
        ({"direction": "sideways"}, "direction"),
        ({"paid_on": "05.12.2026"}, "paid_on"),
        ({"counterparty": {"inn": "77O7"}}, "inn"),
        ({"purpose": "x" * 2001}, "purpose"),
        ({"target": {"kind": "invoice", "id": "nope"}}, "id"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_payments_are_refused_naming_the_field(
    api: tuple[TestClient, Runtime, World], change: dict[str, Any], where: str
) -> None:
    client, runtime, _ = api
    body = {"direction": "in", "amount": "10.00", "paid_on": "2026-12-05", **change}
    loc, _ = field_error(client.post("/api/payments", json=body, headers=ADMIN))
    assert loc[-1] == where or where in loc
    assert payments_page(runtime.views, PaymentFilter())[1] == 0


def test_unknown_references_are_404(api: tuple[TestClient, Runtime, World]) -> None:
    client, _, _ = api
    nobody = "00000000-0000-4000-8000-000000000000"
    body = {"direction": "in", "amount": "10.00", "paid_on": "2026-12-05"}
    for extra in ({"company_id": nobody}, {"contact_id": nobody},
                  {"target": {"kind": "deal", "id": nobody}}):  # fmt: skip
        response = client.post("/api/payments", json={**body, **extra}, headers=ADMIN)
        assert response.status_code == 404, response.text
    assert client.get(f"/api/payments/{nobody}", headers=ADMIN).status_code == 404


# -- import, suggestions, allocations ---------------------------------------------------------


def test_import_with_a_dry_run_then_for_real_then_again(
    api: tuple[TestClient, Runtime, World],
) -> None:
    client, _, w = api
    data = write_statement([ACCOUNT], DOCUMENTS, encoding="cp1251")
    upload = {"file": ("kl_to_1c.txt", data, "text/plain")}
    dry = ok(client.post("/api/payments/import?dry_run=true", files=upload, headers=ADMIN))
    assert (dry["dry_run"], dry["recorded"], dry["file_format"]) == (True, 0, "1c")
    assert [(i["outcome"], i["target_label"]) for i in dry["items"]] == [
        ("matched", "СЧ-1"),
        ("partial", "СЧ-2"),
        ("suggested", "СЧ-3"),
        ("unmatched", ""),
        ("outgoing_linked", "ЗП-1"),
    ]
    assert dry["counts"]["suggested"] == 1 and dry["encoding"] == "cp1251"
    assert ok(client.get("/api/payments", headers=ADMIN))["total"] == 0  # nothing recorded

    raw = {**ADMIN, "Content-Type": "application/octet-stream"}
    done = ok(client.post("/api/payments/import", content=data, headers=raw))
    assert (done["dry_run"], done["recorded"]) == (False, 5)
    again = ok(client.post("/api/payments/import", files=upload, headers=ADMIN))
    assert again["recorded"] == 0 and again["counts"]["already_recorded"] == 5
    assert ok(client.get("/api/payments", headers=ADMIN))["total"] == 5

    listed = ok(client.get("/api/payments?suggested=true", headers=ADMIN))["items"]
    (waiting,) = listed
    detail = ok(client.get(f"/api/payments/{waiting['id']}", headers=ADMIN))
    (suggested,) = detail["suggestions"]
    assert suggested["target_label"] == "СЧ-3" and "invoice 33" in suggested["reason"]
    assert ok(client.get("/api/payments?direction=out", headers=ADMIN))["total"] == 1
    assert ok(client.get("/api/payments?state=unmatched", headers=ADMIN))["total"] == 2
    assert ok(client.get(f"/api/payments?q={STRANGER_INN}", headers=ADMIN))["total"] == 1
    assert ok(client.get("/api/payments?paid_from=2026-12-06", headers=ADMIN))["total"] == 0

    # confirm: the suggestion becomes an allocation and the invoice is paid
    base = f"/api/payments/{waiting['id']}/suggestions/invoice/{w.sch3}"
    operator = user(client, "operator")
    confirmed = ok(client.post(f"{base}/confirm", headers=operator))
    assert confirmed["suggestions"] == [] and confirmed["state"] == "matched"
    assert [(a["target_label"], a["how"]) for a in confirmed["allocations"]] == [
        ("СЧ-3", "confirmed")
    ]
    assert client.post(f"{base}/confirm", headers=operator).status_code == 404
    invoice_row = ok(client.get(f"/api/settlements?company_id={w.romashka}&on=2026-12-20",
                                headers=operator))  # fmt: skip
    assert [i["display_number"] for i in invoice_row["open_invoices"]] == ["СЧ-2"]


def test_a_suggestion_is_dismissed_and_an_allocation_made_and_undone_by_hand(
    api: tuple[TestClient, Runtime, World],
) -> None:
    client, _, w = api
    body = {"direction": "in", "amount": "700.00", "paid_on": "2026-12-05",
            "counterparty": {"inn": ROMASHKA_INN}, "purpose": "за мебель"}  # fmt: skip
    made = ok(client.post("/api/payments", json=body, headers=ADMIN), 201)
    assert made["outcome"]["kind"] == "suggested"
    pid = made["payment"]["id"]
    (suggested,) = made["payment"]["suggestions"]
    assert suggested["target_id"] == str(w.sch3)
    auditor = user(client, "auditor")
    base = f"/api/payments/{pid}/suggestions/invoice/{w.sch3}"
    assert client.post(f"{base}/dismiss", headers=auditor).status_code == 403
    dismissed = ok(client.post(f"{base}/dismiss", headers=ADMIN))
    assert dismissed["suggestions"] == [] and dismissed["state"] == "unmatched"
    assert client.post(f"{base}/dismiss", headers=ADMIN).status_code == 404

    allocations = f"/api/payments/{pid}/allocations"
    part = {"target_kind": "invoice", "target_id": str(w.sch1), "amount": "200.00"}
    allocated = ok(client.post(allocations, json=part, headers=ADMIN))
    assert allocated["state"] == "partial" and allocated["unallocated"] == money("500.00")
    rest = ok(client.post(allocations, json={"target_kind": "invoice", "target_id": str(w.sch3)},
                          headers=ADMIN))  # fmt: skip
    assert rest["state"] == "matched"
    too_much = {**part, "target_id": str(w.sch2)}
    loc, msg = field_error(client.post(allocations, json=too_much, headers=ADMIN))
    assert "amount" in loc and "only 0.00 RUB" in msg
    wrong_kind = {"target_kind": "supplier_order", "target_id": str(w.order)}
    loc, _ = field_error(client.post(allocations, json=wrong_kind, headers=ADMIN))
    assert loc[-1] == "target_kind"
    removed = client.request(
        "DELETE", f"{allocations}/invoice/{w.sch1}", json={"reason": "wrong invoice"},
        headers=ADMIN,
    )  # fmt: skip
    assert ok(removed)["state"] == "partial"
    assert [a["target_label"] for a in removed.json()["allocations"]] == ["СЧ-3"]
    again = client.request("DELETE", f"{allocations}/invoice/{w.sch1}", headers=ADMIN)
    assert again.status_code == 422


def test_a_broken_or_huge_file_is_refused_and_records_nothing(
    api: tuple[TestClient, Runtime, World],
) -> None:
    client, _, _ = api
    broken = (
        write_statement([ACCOUNT], DOCUMENTS)
        .decode("cp1251")
        .replace("Сумма=400.00", "Сумма=четыреста", 1)
    )
    line = broken.split("\r\n").index("Сумма=четыреста") + 1
    for dry in ("true", "false"):
        response = client.post(f"/api/payments/import?dry_run={dry}",
                               files={"file": ("s.txt", broken.encode("cp1251"))}, headers=ADMIN)  # fmt: skip
        loc, msg = field_error(response)
        assert loc[-1] == "file" and msg.startswith(f"line {line}: ")
    csv_broken = "Дата;Сумма\r\n05.12.2026;10,00\r\n06.12.2026;много\r\n".encode("cp1251")
    _, msg = field_error(client.post("/api/payments/import", content=csv_broken,
                                     headers={**ADMIN, "Content-Type": "text/csv"}))  # fmt: skip
    assert msg.startswith("line 3: ")
    loc, msg = field_error(client.post("/api/payments/import", files={"other": ("a", b"x")},
                                       headers=ADMIN))  # fmt: skip
    assert "file" in msg
    # larger than every other body may be, but a statement: taken
    many = [spec(str(n), "1.00", STRANGER_INN, "взнос " + "x" * 150) for n in range(1, 400)]
    big = write_statement([ACCOUNT], many)
    assert len(big) > SMALL_BODY
    taken = ok(client.post("/api/payments/import?dry_run=true", content=big,
                           headers={**ADMIN, "Content-Type": "text/plain"}))  # fmt: skip
    assert taken["counts"]["unmatched"] == 399
    huge = client.post("/api/payments/import", content=b"x" * (50 * 2**20 + 100_000),
                       headers={**ADMIN, "Content-Type": "text/plain"})  # fmt: skip
    assert huge.status_code == 413
    assert ok(client.get("/api/payments", headers=ADMIN))["total"] == 0


# -- settlements ------------------------------------------------------------------------------


def test_the_settlement_shows_invoiced_paid_and_overdue(
    api: tuple[TestClient, Runtime, World],
) -> None:
    client, _, w = api
    body = {"direction": "in", "amount": "400.00", "paid_on": "2026-12-05",
            "counterparty": {"inn": ROMASHKA_INN}, "purpose": "частично по сч. 1"}  # fmt: skip
    ok(client.post("/api/payments", json=body, headers=ADMIN), 201)
    found = ok(client.get(f"/api/settlements?company_id={w.romashka}&on=2026-12-15",
                          headers=user(client, "operator")))  # fmt: skip
    (rub,) = found["items"]
    assert rub["invoiced"] == money("4200.00") and rub["paid"] == money("400.00")
    assert rub["outstanding"] == money("3800.00") and rub["balance"] == money("3800.00")
    assert rub["overdue"] == money("3800.00") and rub["days_overdue"] == 5
    assert rub["open_invoices"] == 3
    first = found["open_invoices"][0]
    assert (first["display_number"], first["outstanding"], first["days_overdue"]) == (
        "СЧ-1", money("600.00"), 5,
    )  # fmt: skip
    assert client.get("/api/settlements", headers=ADMIN).status_code == 422
    both = f"/api/settlements?company_id={w.romashka}&contact_id={w.romashka}"
    assert client.get(both, headers=ADMIN).status_code == 422


# -- contracts --------------------------------------------------------------------------------


def test_contracts_are_registered_listed_prolonged_and_closed(
    api: tuple[TestClient, Runtime, World],
) -> None:
    client, runtime, w = api
    manager = user(client, "manager")
    body = {
        "number": "Д-7/2026",
        "signed_on": "2026-01-10",
        "ends_on": "2026-12-31",
        "amount": money("120000"),
        "company_id": str(w.romashka),
        "title": "Поставка мебели",
        "client_contract_id": "crm-7",
    }
    made = ok(client.post("/api/contracts", json=body, headers=manager), 201)
    cid = made["id"]
    assert (made["status"], made["amount"], made["title"]) == (
        "active", money("120000.00"), "Поставка мебели",
    )  # fmt: skip
    assert ok(client.post("/api/contracts", json=body, headers=manager), 201)["id"] == cid
    printed = invoice(runtime, w.romashka, "5000.00", contract_id=UUID(cid))
    pay = {"direction": "in", "amount": "6000.00", "paid_on": "2026-12-05",
           "company_id": str(w.romashka), "target": {"kind": "contract", "id": cid}}  # fmt: skip
    ok(client.post("/api/payments", json=pay, headers=manager), 201)
    pay_invoice = {**pay, "amount": "5000.00", "target": {"kind": "invoice", "id": str(printed)}}
    ok(client.post("/api/payments", json=pay_invoice, headers=manager), 201)
    detail = ok(client.get(f"/api/contracts/{cid}", headers=manager))
    assert [d["display_number"] for d in detail["documents"]] == ["СЧ-5"]
    assert detail["documents"][0]["payment_state"] == "paid"
    assert sorted((p["target_label"], p["amount"]["amount"]) for p in detail["payments"]) == [
        ("Д-7/2026", "6000.00"), ("СЧ-5", "5000.00"),
    ]  # fmt: skip
    assert detail["paid"] == money("6000.00")

    listed = ok(client.get(f"/api/contracts?company_id={w.romashka}&q=Д-7", headers=manager))
    assert [c["id"] for c in listed["items"]] == [cid] and listed["total"] == 1
    assert ok(client.get("/api/contracts?status=closed", headers=manager))["total"] == 0

    prolonged = ok(client.patch(f"/api/contracts/{cid}",
                                json={"ends_on": "2027-12-31", "amount": None}, headers=manager))  # fmt: skip
    assert (prolonged["ends_on"], prolonged["amount"]) == ("2027-12-31", None)
    loc, msg = field_error(client.patch(f"/api/contracts/{cid}", json={"ends_on": "2025-01-01"},
                                        headers=manager))  # fmt: skip
    assert loc[-1] == "ends_on" and "ends after it starts" in msg
    auditor = user(client, "auditor")
    assert client.post(f"/api/contracts/{cid}/close", headers=auditor).status_code == 403
    closed = ok(client.post(f"/api/contracts/{cid}/close", json={"reason": "fulfilled"},
                            headers=manager))  # fmt: skip
    assert (closed["status"], closed["close_reason"]) == ("closed", "fulfilled")
    assert client.post(f"/api/contracts/{cid}/close", headers=manager).status_code == 409
    assert ok(client.get("/api/contracts?status=closed", headers=auditor))["total"] == 1
    nobody = "00000000-0000-4000-8000-000000000000"
    assert client.get(f"/api/contracts/{nobody}", headers=manager).status_code == 404
    loc, _ = field_error(client.post("/api/contracts", json={**body, "number": " ",
                                     "client_contract_id": "x"}, headers=manager))  # fmt: skip
    assert loc[-1] == "number"
    missing = {"number": "Д-8", "signed_on": "2026-01-10"}
    loc, _ = field_error(client.post("/api/contracts", json=missing, headers=manager))
    assert loc[-1] == "company_id"


# -- the command ------------------------------------------------------------------------------


def run_cli(*args: str, database_url: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [threadline_executable(), *args],
        cwd=cwd,
        env=threadline_env(database_url),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_command_previews_imports_and_refuses_a_broken_file(
    sqlite_url: str, tmp_path: Path
) -> None:
    runtime = make_runtime(sqlite_url)
    try:
        world(runtime)
    finally:
        runtime.close()
    statement = tmp_path / "kl_to_1c.txt"
    statement.write_bytes(write_statement([ACCOUNT], DOCUMENTS, encoding="cp866"))

    dry = run_cli("payments", "import", str(statement), "--dry-run",
                  database_url=sqlite_url, cwd=tmp_path)  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert "partial (the rest stays due)" in dry.stderr and "suggested" in dry.stderr
    assert "dry run: nothing recorded; 5 of 5 payments would be recorded" in dry.stderr

    done = run_cli("payments", "import", str(statement), "--actor", "user:accountant",
                   database_url=sqlite_url, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "5 recorded, 0 already recorded (5 in the file)" in done.stderr
    again = run_cli("payments", "import", str(statement), database_url=sqlite_url, cwd=tmp_path)
    assert "0 recorded, 5 already recorded" in again.stderr, again.stderr

    runtime = make_runtime(sqlite_url)
    try:
        rows, total = payments_page(runtime.views, PaymentFilter())
        assert total == 5 and {r.recorded_by for r in rows} == {"user:accountant"}
    finally:
        runtime.close()

    broken = tmp_path / "broken.txt"
    text = statement.read_bytes().decode("cp866").replace("Дата=05.12.2026", "Дата=5 декабря", 1)
    broken.write_bytes(text.encode("cp866"))
    line = text.split("\r\n").index("Дата=5 декабря") + 1
    refused = run_cli("payments", "import", str(broken), database_url=sqlite_url, cwd=tmp_path)
    assert refused.returncode == 2
    assert f"line {line}:" in refused.stderr and "nothing was recorded" in refused.stderr
    assert "fix the file and import it again" in refused.stderr
    assert "Traceback" not in refused.stderr
    missing = run_cli("payments", "import", str(tmp_path / "nope.txt"),
                      database_url=sqlite_url, cwd=tmp_path)  # fmt: skip
    assert missing.returncode == 2 and "cannot read" in missing.stderr
