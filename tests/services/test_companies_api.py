"""`/api/companies` end to end on SQLite and PostgreSQL: create, change each field, page, refuse.

Each PATCH must record exactly the event of the field it changes (and nothing when the value
stays the same), and a refused one (bad check digit, unknown company) must record nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_runtime
from threadline.domain.model.attributes import AttributeDefinition, AttributeScope, AttributeType
from threadline.services.api.app import create_app
from threadline.services.runtime import Runtime

ADMIN = {"Authorization": "Bearer admin-secret"}
SBER_BIK = "044525225"
SBER_ACCOUNT = "40702810938000000001"
SBER_CORRESPONDENT = "30101810400000000225"


@pytest.fixture
def api(database_url: str) -> Iterator[tuple[TestClient, Runtime]]:
    runtime = make_runtime(database_url, admin_token="admin-secret")
    try:
        with TestClient(create_app(runtime)) as client:
            yield client, runtime
    finally:
        runtime.close()


def sber_set() -> dict[str, Any]:
    return {
        "label": "Main",
        "inn": "7707083893",
        "kpp": "773601001",
        "ogrn": "1027700132195",
        "legal_address": "Moscow, Vavilova 19",
        "bank_accounts": [
            {
                "bank_name": "Sberbank",
                "bik": SBER_BIK,
                "account": SBER_ACCOUNT,
                "correspondent_account": SBER_CORRESPONDENT,
            }
        ],
    }


def event_names(runtime: Runtime, company_id: str) -> list[str]:
    return [type(e).__name__ for e in runtime.app.repository.event_store.get(UUID(company_id))]


def create(client: TestClient, **body: Any) -> str:
    response = client.post("/api/companies", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    company_id: str = response.json()["id"]
    return company_id


def test_create_with_every_field_and_read_it_back(api: tuple[TestClient, Runtime]) -> None:
    client, runtime = api
    company_id = create(
        client,
        name="Sberbank",
        roles=["supplier", "client"],
        legal_form="company",
        requisites=[sber_set()],
        client_group="wholesale",
    )
    body = client.get(f"/api/companies/{company_id}", headers=ADMIN).json()
    assert body["name"] == "Sberbank"
    assert body["roles"] == ["client", "supplier"]  # one order, whatever was sent
    assert (body["legal_form"], body["client_group"], body["inn"]) == (
        "company",
        "wholesale",
        "7707083893",
    )
    assert body["requisites"] == [{**sber_set(), "postal_address": ""}]
    assert body["contacts"] == []
    assert event_names(runtime, company_id) == [
        "CompanyCreated",
        "CompanyRolesChanged",
        "CompanyLegalFormChanged",
        "CompanyRequisitesChanged",
        "CompanyGroupChanged",
    ]
    stored = list(runtime.app.repository.event_store.get(UUID(company_id)))
    assert stored[3].personal == {"requisites": [{**sber_set(), "postal_address": ""}]}


@pytest.mark.parametrize(
    ("patch", "event", "check"),
    [
        ({"name": "Acme Group"}, "CompanyRenamed", ("name", "Acme Group")),
        ({"roles": ["partner"]}, "CompanyRolesChanged", ("roles", ["partner"])),
        ({"client_group": "retail"}, "CompanyGroupChanged", ("client_group", "retail")),
        (
            {"attributes": {"staff": 120}},
            "CompanyAttributesChanged",
            ("attributes", {"staff": 120}),
        ),
        (
            {"legal_form": "company", "requisites": [sber_set()]},
            "CompanyRequisitesChanged",
            ("inn", "7707083893"),
        ),
    ],
)
def test_patch_changes_one_field_and_records_its_event(
    api: tuple[TestClient, Runtime], patch: dict[str, Any], event: str, check: tuple[str, Any]
) -> None:
    client, runtime = api
    runtime.app.define_attribute(
        AttributeDefinition("staff", "Staff", AttributeType.NUMBER, scope=AttributeScope.COMPANY),
        "test",
    )
    company_id = create(client, name="Acme", roles=["client"], client_group="wholesale")
    before = event_names(runtime, company_id)
    response = client.patch(f"/api/companies/{company_id}", json=patch, headers=ADMIN)
    assert response.status_code == 200, response.text
    key, value = check
    assert response.json()[key] == value
    assert client.get(f"/api/companies/{company_id}", headers=ADMIN).json()[key] == value
    added = event_names(runtime, company_id)[len(before) :]
    assert event in added
    # Only the fields sent changed: the rest reads as before.
    body = response.json()
    if "name" not in patch:
        assert body["name"] == "Acme"
    if "client_group" not in patch:
        assert body["client_group"] == "wholesale"
    # Sending the same values again records nothing.
    again = client.patch(f"/api/companies/{company_id}", json=patch, headers=ADMIN)
    assert again.status_code == 200
    assert len(event_names(runtime, company_id)) == len(before) + len(added)


def test_the_legal_form_changes_and_the_group_clears(api: tuple[TestClient, Runtime]) -> None:
    client, runtime = api
    company_id = create(
        client, name="Ivanov", legal_form="sole_trader", client_group="retail", requisites=[]
    )
    path = f"/api/companies/{company_id}"
    body = client.patch(path, json={"legal_form": "private_person"}, headers=ADMIN).json()
    assert body["legal_form"] == "private_person"
    body = client.patch(path, json={"client_group": ""}, headers=ADMIN).json()
    assert body["client_group"] == ""
    assert event_names(runtime, company_id)[-2:] == [
        "CompanyLegalFormChanged",
        "CompanyGroupChanged",
    ]


@pytest.mark.parametrize(
    ("patch", "loc"),
    [
        (
            {"legal_form": "company", "requisites": [{**sber_set(), "inn": "7707083894"}]},
            ["body", "requisites", "0", "inn"],
        ),
        (
            {
                "legal_form": "company",
                "requisites": [
                    {
                        "inn": "7707083893",
                        "bank_accounts": [{"bik": SBER_BIK, "account": "40702810938000000002"}],
                    }
                ],
            },
            ["body", "requisites", "0", "bank_accounts", "0", "account"],
        ),
        (
            {"legal_form": "sole_trader", "requisites": [{"inn": "7707083893"}]},
            ["body", "requisites", "0", "inn"],
        ),
        ({"requisites": [{"inn": "7707083893"}]}, ["body", "legal_form"]),
        ({"roles": ["customer"]}, ["body", "roles", 0]),
        # A NUL would stop the view on PostgreSQL for good: refused before it is recorded.
        ({"name": "Acme\u0000"}, ["body", "name"]),
        ({"client_group": "retail\u0000"}, ["body", "client_group"]),
        (
            {"legal_form": "company", "requisites": [{"inn": "7707083893", "label": "a\u0000"}]},
            ["body", "requisites", "0", "label"],
        ),
    ],
)
def test_a_bad_value_is_refused_naming_its_field_and_records_nothing(
    api: tuple[TestClient, Runtime], patch: dict[str, Any], loc: list[Any]
) -> None:
    client, runtime = api
    company_id = create(client, name="Acme")
    before = event_names(runtime, company_id)
    response = client.patch(f"/api/companies/{company_id}", json=patch, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == loc
    assert event_names(runtime, company_id) == before
    assert client.get(f"/api/companies/{company_id}", headers=ADMIN).json()["requisites"] == []


def test_an_unknown_company_is_404(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    unknown = uuid4()
    assert client.get(f"/api/companies/{unknown}", headers=ADMIN).status_code == 404
    response = client.patch(f"/api/companies/{unknown}", json={"name": "X"}, headers=ADMIN)
    assert response.status_code == 404


def test_paging_search_and_role_filter(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    for name, roles in [
        ("Delta", ["client"]),
        ("Alpha", ["supplier"]),
        ("Echo", ["client", "partner"]),
        ("Charlie", []),
        ("Bravo", ["client"]),
    ]:
        create(client, name=name, roles=roles)
    create(client, name="Sber", legal_form="company", requisites=[sber_set()], roles=["supplier"])

    def page(**params: Any) -> tuple[list[str], int]:
        response = client.get("/api/companies", params=params, headers=ADMIN)
        assert response.status_code == 200, response.text
        body = response.json()
        return [item["name"] for item in body["items"]], body["total"]

    assert page(limit=2) == (["Alpha", "Bravo"], 6)
    assert page(limit=2, offset=2) == (["Charlie", "Delta"], 6)
    assert page(limit=2, offset=4) == (["Echo", "Sber"], 6)
    assert page(limit=2, offset=6) == ([], 6)
    assert page(role="client") == (["Bravo", "Delta", "Echo"], 3)
    assert page(role="supplier", limit=1) == (["Alpha"], 2)
    assert page(q="ALP") == (["Alpha"], 1)
    assert page(q="al\x00p") == (["Alpha"], 1)  # a NUL is searched for as nothing
    assert page(q="770708") == (["Sber"], 1)  # part of the ИНН
    assert page(q="%") == (["Alpha", "Bravo", "Charlie", "Delta", "Echo", "Sber"], 6)
    assert client.get("/api/companies?role=customer", headers=ADMIN).status_code == 422
    assert client.get("/api/companies?limit=0", headers=ADMIN).status_code == 422


def test_the_company_lists_its_contacts(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    company_id = create(client, name="Acme")
    contact = client.post(
        "/api/contacts",
        json={"name": "Olga", "identities": [{"kind": "email", "value": "olga@example.com"}]},
        headers=ADMIN,
    ).json()["id"]
    linked = client.patch(
        f"/api/contacts/{contact}", json={"company_id": company_id}, headers=ADMIN
    )
    assert linked.status_code == 200, linked.text
    body = client.get(f"/api/companies/{company_id}", headers=ADMIN).json()
    assert body["contacts"] == [{"id": contact, "display_name": "Olga", "lifecycle": "lead"}]
    card = client.get(f"/api/contacts/{contact}", headers=ADMIN).json()
    assert card["company"] == {"id": company_id, "name": "Acme"}


def test_an_auditor_reads_but_cannot_write(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    company_id = create(client, name="Acme")
    made = client.post(
        "/api/users", json={"email": "a@example.com", "role": "auditor"}, headers=ADMIN
    )
    auditor = {"Authorization": f"Bearer {made.json()['token']}"}
    assert client.get(f"/api/companies/{company_id}", headers=auditor).status_code == 200
    refused = client.patch(f"/api/companies/{company_id}", json={"name": "X"}, headers=auditor)
    assert refused.status_code == 403
