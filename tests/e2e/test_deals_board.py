"""The deals board in Chromium: drag a card to another stage, and a second browser sees it live.

The drag is native HTML5 drag and drop (app.js); the drop posts the move and the board is
redrawn from the views. A second browser context, logged in as another manager, has the same
board open: its event stream names `deals:<pipeline id>` and the card moves there without a
reload. Dropping on a lost stage asks for the reason in a dialog first.
"""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

import pytest

from tests.e2e.browser import PAGE_TIMEOUT_MS, LiveServer, screenshot
from tests.web.helpers import PASSWORD, create_user
from threadline.domain.model.pipeline import seeded_pipeline_id, seeded_stage_id
from threadline.projections.deals import StageHistoryFilter, deal, stage_history

pytestmark = pytest.mark.slow

WAIT_MS = 10_000


def stage(key: str) -> str:
    return seeded_stage_id("new-clients", key)


def log_in(server: LiveServer, page: Any, email: str) -> None:
    page.goto(f"{server.url}/login?next=/deals")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(f"{server.url}/deals")


def wait_for_event_streams(server: LiveServer, count: int) -> None:
    """Both pages hold their SSE stream once the server has answered /ui/events that often."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while time.monotonic() < deadline:
        if sum(1 for r in server.seen if r.path == "/ui/events" and r.status == 200) >= count:
            return
        time.sleep(0.05)
    raise AssertionError("the pages never opened their event streams")


def seed(server: LiveServer) -> tuple[str, str]:
    runtime = server.runtime
    runtime.wait_for_views(runtime.app.seed_pipelines("test").notification_id)
    contact = runtime.app.create_contact(actor="test", name="Olga Smirnova")
    assert runtime.wait_for_views(contact.notification_id, timeout=60)
    ids = []
    for title, amount in (("Boxes for Olga", "1000"), ("Tape for Olga", "250")):
        created = runtime.app.create_deal(
            actor="test",
            title=title,
            pipeline_id=seeded_pipeline_id("new-clients"),
            contact_id=contact.value,
            amount=amount,
        )
        assert runtime.wait_for_views(created.notification_id, timeout=60)
        ids.append(str(created.value))
    return ids[0], ids[1]


def test_a_dragged_deal_moves_on_both_boards_and_in_its_history(
    live_server: LiveServer, page: Any, browser: Any
) -> None:
    from playwright.sync_api import expect

    server = live_server
    create_user(server.runtime, "anna@example.com", "manager", name="Anna")
    create_user(server.runtime, "boris@example.com", "manager", name="Boris")
    boxes, tape = seed(server)
    other_context = browser.new_context()
    other_context.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        other = other_context.new_page()
        log_in(server, page, "anna@example.com")
        log_in(server, other, "boris@example.com")
        wait_for_event_streams(server, 2)
        other.evaluate("window.__still_the_same_page = true")
        confirmation = f"#stage-{stage('confirmation')}"
        expect(other.locator(f"#stage-{stage('mutual-intent')} #deal-{boxes}")).to_be_visible()

        page.locator(f"#deal-{boxes}").drag_to(page.locator(confirmation))

        # The board that dropped it is redrawn from the views: the card and the column's count.
        expect(page.locator(f"{confirmation} #deal-{boxes}")).to_be_visible(timeout=WAIT_MS)
        expect(page.locator(f"{confirmation} .column-count")).to_have_text("1")
        row = deal(server.runtime.views, boxes)
        assert row is not None and row.stage_id == stage("confirmation")
        # The other manager's board follows live, without a reload.
        expect(other.locator(f"{confirmation} #deal-{boxes}")).to_be_visible(timeout=WAIT_MS)
        expect(other.locator(f"#stage-{stage('mutual-intent')} #deal-{boxes}")).to_have_count(0)
        assert other.evaluate("window.__still_the_same_page === true")
        screenshot(other, "deals-board-live")

        # A lost stage asks for the reason first; the card goes there once one is chosen.
        lost = f"#stage-{stage('lost')}"
        page.locator(f"#deal-{tape}").drag_to(page.locator(lost))
        dialog = page.locator("#deal-lost-dialog")
        expect(dialog).to_be_visible(timeout=WAIT_MS)
        dialog.locator("select[name=reason]").select_option("Chose a competitor")
        dialog.get_by_role("button", name="Mark as lost").click()
        expect(page.locator(f"{lost} #deal-{tape}")).to_be_visible(timeout=WAIT_MS)
        expect(other.locator(f"{lost} #deal-{tape}")).to_be_visible(timeout=WAIT_MS)
        lost_row = deal(server.runtime.views, tape)
        assert lost_row is not None and lost_row.lost_reason == "Chose a competitor"

        # The deal's history shows the move, and its stays the time in each stage.
        page.goto(f"{server.url}/deals/{boxes}")
        history = page.locator("#deal-history")
        expect(history).to_contain_text("Moved from Mutual intent to Confirmation")
        expect(page.locator("#stage-history tr.stay")).to_have_count(2)
        stays = stage_history(server.runtime.views, StageHistoryFilter(deal_id=boxes))
        assert [s.stage_id for s in stays] == [stage("mutual-intent"), stage("confirmation")]
        assert stays[0].actor == "test" and stays[1].actor.startswith("user:")
        screenshot(page, "deal-page")

        # Boris moves it back from his deal page; Anna's open deal page follows live.
        other.goto(f"{server.url}/deals/{boxes}")
        wait_for_event_streams(server, 4)
        other.locator("#deal-stage-actions select[name=stage_id]").select_option(
            stage("mutual-intent")
        )
        other.locator("#deal-stage-actions .deal-move-form button[type=submit]").click()
        expect(other.locator("#deal-summary [data-field=stage]")).to_have_text("Mutual intent")
        expect(page.locator("#deal-history")).to_contain_text(
            "Moved from Confirmation to Mutual intent", timeout=WAIT_MS
        )
        assert UUID(boxes)
    finally:
        other_context.close()
