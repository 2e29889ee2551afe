"""The funnel report in Chromium: click a stage's "Entries" figure, see the deals behind it.

The data set is the web test's (tests/services/test_reports_web.py): in March 2026 the
"Mutual intent" stage was entered by Alpha, Beta and Gamma, once each, so its "Entries"
figure is 3 and its drill-down lists those three deals by title, each linking to its page.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.browser import LiveServer, screenshot
from tests.services.test_reports_web import build
from tests.web.helpers import PASSWORD, create_user

pytestmark = pytest.mark.slow


def test_a_stage_figure_drills_to_its_deals(live_server: LiveServer, page: Any) -> None:
    server = live_server
    ids = build(server.runtime)
    create_user(server.runtime, "boss@example.com", "manager", name="Boss")
    page.goto(f"{server.url}/login?next=/reports")
    page.fill("input[name=email]", "boss@example.com")
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(f"{server.url}/reports")
    page.click("a[href='/reports/funnel']")
    page.wait_for_url(f"{server.url}/reports/funnel")
    page.fill("input[name=from]", "2026-03-01")
    page.fill("input[name=to]", "2026-03-31")
    page.click("#report-picker button[type=submit]")
    page.wait_for_url("**/reports/funnel?*from=2026-03-01*")
    row = page.locator("#section-stages tr.report-row", has_text="Mutual intent")
    entries = row.locator("td[data-measure=entries] a")
    assert entries.inner_text() == "3"
    screenshot(page, "reports-funnel")
    entries.click()
    page.wait_for_url("**/reports/funnel/stages/items?*")
    titles = page.locator("td[data-column=deal_title] a")
    titles.first.wait_for()
    assert sorted(titles.all_inner_texts()) == ["Alpha", "Beta", "Gamma"]
    assert page.locator("#drill-total").inner_text() == "3"
    screenshot(page, "reports-funnel-drill")
    page.click("td[data-column=deal_title] a:text-is('Beta')")
    page.wait_for_url(f"{server.url}/deals/{ids['beta']}")
