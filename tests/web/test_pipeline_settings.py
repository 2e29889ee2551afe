"""The pipeline settings screen: create, rename, add / edit / reorder stages, lost reasons, archive.

What the page changes is checked in the views (`projections.deals.pipeline`, `board`): the
board's columns follow the new order and names, and stage ids never change, so the stage
history of a deal keeps its figures. Refusals show next to their field; only managers and
admins change anything.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import make_runtime
from tests.web.helpers import web_client
from threadline.domain.model.pipeline import seeded_pipeline_id, seeded_stage_id
from threadline.projections.deals import StageHistoryFilter, board, stage_history
from threadline.projections.pipelines import pipeline
from threadline.services.runtime import Runtime

REPEAT = str(seeded_pipeline_id("repeat-sales"))


@pytest.fixture
def runtime(sqlite_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(sqlite_url, attachments_dir=str(tmp_path / "attachments"))
    rt.wait_for_views(rt.app.seed_pipelines("test").notification_id)
    try:
        yield rt
    finally:
        rt.close()


def post(client: TestClient, url: str, csrf: str, data: Any) -> Any:
    """Post a form; `data` is a dict or a list of pairs (a name may repeat, as `order` does)."""
    pairs = list(data.items()) if isinstance(data, dict) else list(data)
    body: dict[str, list[str]] = {"csrf_token": [csrf]}
    for name, value in pairs:
        body.setdefault(name, []).append(value)
    return client.post(url, data=body, follow_redirects=False)


def error_for(html: str, key: str) -> str:
    found = re.search(rf'data-error-for="{re.escape(key)}">([^<]*)<', html)
    return found.group(1) if found else ""


def stage_ids(pipeline_id: str, runtime: Runtime) -> list[str]:
    found = pipeline(runtime.views, pipeline_id)
    assert found is not None
    return [s.id for s in found.stages]


def test_the_list_shows_the_shipped_pipelines_and_the_note_on_past_figures(
    runtime: Runtime,
) -> None:
    client, _csrf, _me = web_client(runtime, "manager")
    page = client.get("/admin/pipelines")
    assert page.status_code == 200
    for name in ("New clients", "Repeat sales", "Inbound requests"):
        assert name in page.text
    assert "never changes past figures" in page.text
    detail = client.get(f"/admin/pipelines/{REPEAT}")
    assert detail.status_code == 200
    assert "Offer" in detail.text and "never changes past figures" in detail.text


def test_a_new_pipeline_is_made_from_the_filled_rows(runtime: Runtime) -> None:
    client, csrf, _me = web_client(runtime, "manager")
    rows = [
        ("Lead", "open", "20", "3"),
        ("", "open", "", ""),  # a blank row is skipped
        ("Signed", "won", "", ""),
        ("Dropped", "lost", "", ""),
    ]
    data: list[tuple[str, str]] = [("name", "Partners"), ("rows", str(len(rows)))]
    for index, (name, meaning, probability, stale) in enumerate(rows):
        data += [
            (f"s{index}_name", name),
            (f"s{index}_meaning", meaning),
            (f"s{index}_probability", probability),
            (f"s{index}_stale_days", stale),
        ]
    data.append(("lost_reasons", "Too expensive\n\nWent silent\n"))
    answer = post(client, "/admin/pipelines", csrf, data)
    assert answer.status_code == 303, answer.text
    new_id = answer.headers["location"].split("?")[0].removeprefix("/admin/pipelines/")
    found = pipeline(runtime.views, new_id)
    assert found is not None
    assert found.name == "Partners"
    assert [(s.name, s.meaning, s.probability, s.stale_days) for s in found.stages] == [
        ("Lead", "open", 20, 3),
        ("Signed", "won", 100, 0),
        ("Dropped", "lost", 0, 0),
    ]
    assert found.lost_reasons == ["Too expensive", "Went silent"]


def test_a_refused_new_pipeline_names_the_row_and_keeps_what_was_typed(
    runtime: Runtime,
) -> None:
    client, csrf, _me = web_client(runtime, "manager")
    before = len(client.get("/admin/pipelines").text)
    data = [
        ("name", "Broken"),
        ("rows", "2"),
        ("s0_name", "Lead"),
        ("s0_meaning", "open"),
        ("s0_probability", "140"),
        ("s0_stale_days", ""),
        ("s1_name", "Signed"),
        ("s1_meaning", "won"),
        ("s1_probability", ""),
        ("s1_stale_days", ""),
    ]
    answer = post(client, "/admin/pipelines", csrf, data)
    assert answer.status_code == 422
    assert error_for(answer.text, "stages.0.probability") == "a probability is 0 to 100 percent"
    assert 'value="140"' in answer.text and 'value="Broken"' in answer.text
    data[4] = ("s0_probability", "40")
    no_lost = post(client, "/admin/pipelines", csrf, data)
    assert no_lost.status_code == 422
    assert error_for(no_lost.text, "stages") == "a pipeline needs at least one lost stage"
    assert "Broken" not in client.get("/admin/pipelines").text[:before]
    assert all(p.name != "Broken" for p in _all(runtime))


def _all(runtime: Runtime) -> list[Any]:
    from threadline.projections.pipelines import pipelines

    return pipelines(runtime.views, include_archived=True)


def test_add_rename_and_reorder_stages_keep_ids_and_the_board_follows(runtime: Runtime) -> None:
    client, csrf, _me = web_client(runtime, "manager")
    offer, order = (
        seeded_stage_id("repeat-sales", "offer"),
        seeded_stage_id("repeat-sales", "order"),
    )
    ids_before = stage_ids(REPEAT, runtime)

    added = post(
        client,
        f"/admin/pipelines/{REPEAT}/stages",
        csrf,
        {"name": "Negotiation", "meaning": "open", "probability": "70", "stale_days": "4"},
    )
    assert added.status_code == 303, added.text
    ids = stage_ids(REPEAT, runtime)
    assert ids[: len(ids_before)] == ids_before  # the old stages keep their ids and places
    [negotiation] = [s for s in ids if s not in ids_before]
    found = pipeline(runtime.views, REPEAT)
    assert found is not None
    new_stage = found.stages[-1]
    assert (new_stage.name, new_stage.meaning, new_stage.probability, new_stage.stale_days) == (
        "Negotiation",
        "open",
        70,
        4,
    )

    renamed = post(
        client,
        f"/admin/pipelines/{REPEAT}/stages/{offer}",
        csrf,
        {"name": "First offer", "probability": "25", "stale_days": "10"},
    )
    assert renamed.status_code == 303, renamed.text
    found = pipeline(runtime.views, REPEAT)
    assert found is not None
    first = found.stages[0]
    assert (first.id, first.name, first.probability, first.stale_days) == (
        offer,
        "First offer",
        25,
        10,
    )

    # The "down" button of the first stage posts the whole order with it one place lower.
    page = client.get(f"/admin/pipelines/{REPEAT}").text
    forms = re.findall(
        rf'<form method="post" action="/admin/pipelines/{REPEAT}/order".*?</form>', page, re.S
    )
    down_of_first = forms[1]  # per stage: up, down
    posted_order = re.findall(r'name="order" value="([^"]+)"', down_of_first)
    assert posted_order[:2] == [order, offer]
    moved = post(
        client, f"/admin/pipelines/{REPEAT}/order", csrf, [("order", s) for s in posted_order]
    )
    assert moved.status_code == 303, moved.text
    assert stage_ids(REPEAT, runtime) == posted_order
    assert sorted(posted_order) == sorted([*ids_before, negotiation])
    columns = [column.stage_id for column in board(runtime.views, REPEAT)]
    assert columns[:2] == [order, offer]
    assert negotiation in columns


def test_renaming_and_reordering_leave_a_deals_stage_history_as_it_was(runtime: Runtime) -> None:
    client, csrf, _me = web_client(runtime, "manager")
    offer, order = (
        seeded_stage_id("repeat-sales", "offer"),
        seeded_stage_id("repeat-sales", "order"),
    )
    contact = runtime.app.create_contact(actor="test", name="Olga Smirnova")
    deal = runtime.app.create_deal(
        actor="test",
        title="Boxes",
        pipeline_id=seeded_pipeline_id("repeat-sales"),
        contact_id=contact.value,
        amount="1500",
    )
    assert runtime.wait_for_views(deal.notification_id, timeout=60)
    moved = runtime.app.move_deal(deal.value, order, "test")
    assert runtime.wait_for_views(moved.notification_id, timeout=60)

    def history() -> list[tuple[Any, ...]]:
        rows = stage_history(runtime.views, StageHistoryFilter(deal_id=str(deal.value)), 50, 0)
        return [
            (r.from_stage_id, r.stage_id, r.amount_minor, r.probability, r.entered_at, r.left_at)
            for r in rows
        ]

    before = history()
    assert [row[:2] for row in before] == [(None, offer), (offer, order)]
    post(client, f"/admin/pipelines/{REPEAT}/stages/{order}", csrf, {"name": "Purchase order"})
    ids = stage_ids(REPEAT, runtime)
    post(client, f"/admin/pipelines/{REPEAT}/order", csrf, [("order", s) for s in reversed(ids)])
    assert stage_ids(REPEAT, runtime) == list(reversed(ids))
    assert history() == before


def test_stage_refusals_show_by_their_field(runtime: Runtime) -> None:
    client, csrf, _me = web_client(runtime, "manager")
    offer = seeded_stage_id("repeat-sales", "offer")
    blank = post(client, f"/admin/pipelines/{REPEAT}/stages/{offer}", csrf, {"name": " "})
    assert blank.status_code == 422
    assert error_for(blank.text, f"stage:{offer}.name")
    odd = post(
        client,
        f"/admin/pipelines/{REPEAT}/stages",
        csrf,
        {"name": "Later", "meaning": "open", "stale_days": "soon"},
    )
    assert odd.status_code == 422
    assert error_for(odd.text, "new.stale_days") == "a whole number"
    assert 'value="Later"' in odd.text
    short = post(client, f"/admin/pipelines/{REPEAT}/order", csrf, [("order", offer)])
    assert short.status_code == 422
    assert error_for(short.text, "order") == "name every stage of the pipeline exactly once"
    found = pipeline(runtime.views, REPEAT)
    assert found is not None and found.stages[0].name == "Offer" and len(found.stages) == 5


def test_rename_lost_reasons_and_archive(runtime: Runtime) -> None:
    client, csrf, _me = web_client(runtime, "admin")
    assert (
        post(client, f"/admin/pipelines/{REPEAT}/name", csrf, {"name": "Upsell"}).status_code == 303
    )
    reasons = post(
        client, f"/admin/pipelines/{REPEAT}/lost-reasons", csrf, {"lost_reasons": "Late\nPrice\n"}
    )
    assert reasons.status_code == 303
    archived = post(client, f"/admin/pipelines/{REPEAT}/archive", csrf, {"archived": "1"})
    assert archived.status_code == 303
    found = pipeline(runtime.views, REPEAT)
    assert found is not None
    assert (found.name, found.lost_reasons, found.archived) == ("Upsell", ["Late", "Price"], True)
    assert "Bring back" in client.get(f"/admin/pipelines/{REPEAT}").text
    post(client, f"/admin/pipelines/{REPEAT}/archive", csrf, {"archived": "0"})
    found = pipeline(runtime.views, REPEAT)
    assert found is not None and not found.archived


@pytest.mark.parametrize("role", ["operator", "auditor"])
def test_only_managers_and_admins_change_pipelines(runtime: Runtime, role: str) -> None:
    client, csrf, _me = web_client(runtime, role)
    page = client.get(f"/admin/pipelines/{REPEAT}")
    assert page.status_code == 200 and "Read only" in page.text
    refused = post(client, f"/admin/pipelines/{REPEAT}/name", csrf, {"name": "Hijacked"})
    assert refused.status_code == 403
    found = pipeline(runtime.views, REPEAT)
    assert found is not None and found.name == "Repeat sales"


def test_the_settings_speak_russian(runtime: Runtime) -> None:
    client, csrf, _me = web_client(runtime, "manager", locale="ru")
    page = client.get("/admin/pipelines")
    assert "Воронки" in page.text and "Новая воронка" in page.text
    assert "никогда не меняет прошлых цифр" in page.text
    detail = client.get(f"/admin/pipelines/{REPEAT}")
    assert "Добавить этап" in detail.text and "Причины проигрыша" in detail.text
    odd = post(client, f"/admin/pipelines/{REPEAT}/stages", csrf, {"name": "X", "stale_days": "a"})
    assert error_for(odd.text, "new.stale_days") == "целое число"
