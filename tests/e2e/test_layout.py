"""The layout in Chromium at 1,440 px and 390 px: nothing wider than the screen, nothing overlapping.

Seen before: the client card's "Responsible" select ran out of the card, long
attribute labels were drawn over their values, and at 390 px the inbox was 1,085 px
wide. Each page is measured with the browser's own boxes (bounding boxes and the
document's scrollWidth), and a full-page screenshot of each is saved to
tests/e2e/artifacts/ as ``layout-<page>-<width>.png`` for a person to look at.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.browser import LiveServer, screenshot
from tests.web.helpers import PASSWORD, create_user
from threadline.domain.model.attributes import AttributeDefinition, AttributeType
from threadline.domain.model.inbound import InboundMessage

pytestmark = pytest.mark.slow

WIDTHS = (1440, 390)
LONG_NAME = "Konstantin Konstantinopolsky-Vasilyevsky, senior account manager (night shift)"
ATTRIBUTES = (
    AttributeDefinition(
        "delivery_window",
        "Preferred delivery time window for large wholesale orders",
        AttributeType.TEXT,
    ),
    AttributeDefinition(
        "purchasing_staff", "Number of employees in the purchasing department", AttributeType.NUMBER
    ),
    AttributeDefinition("plan", "Plan", AttributeType.CHOICE, options=("basic", "pro")),
    # a label typed like a key: one word, wider than the label's column
    AttributeDefinition(
        "crm_sync", "external_crm_synchronisation_identifier", AttributeType.TEXT, personal=True
    ),
)
TOLERANCE = 0.5  # px: sub-pixel rounding of boxes


def seed(server: LiveServer) -> tuple[str, str]:
    """A conversation whose client has long attribute labels and values; long operator names."""
    runtime = server.runtime
    for definition in ATTRIBUTES:
        runtime.app.define_attribute(definition, "test")
    for number in range(3):
        create_user(runtime, f"long{number}@example.com", "operator", name=f"{LONG_NAME} {number}")
    committed = runtime.app.ingest(
        InboundMessage.create(
            channel="email",
            dedup_key="layout-1",
            identities=[
                ("email", "aleksandra.rimskaya-korsakova.purchasing@example-wholesale.com")
            ],
            sender_name="Aleksandra Rimskaya-Korsakova",
            subject="Re: Re: Fwd: quarterly wholesale order — delivery schedule for the northern warehouses",
            text="Could you confirm the delivery window for the large order? " * 6,
        )
    )
    result = committed.value
    updated = runtime.app.update_contact(
        result.contact_id,
        actor="test",
        attributes={
            "delivery_window": "Weekdays between 06:00 and 09:30, never on public holidays",
            "purchasing_staff": 12,
            "plan": "pro",
            "crm_sync": "SF-0000123456789-EMEA-NORTH-WHOLESALE",
        },
        tags=["wholesale", "northern-warehouses", "priority-customer-2026"],
    )
    assert runtime.wait_for_views(updated.notification_id, timeout=60)
    task = runtime.app.create_task(
        actor="test",
        title="Call back about the delivery window of the quarterly wholesale order " * 2,
        due_at=datetime.now(UTC) + timedelta(hours=2),
        contact_id=result.contact_id,
        conversation_id=result.conversation_id,
    )
    assert runtime.wait_for_views(task.notification_id, timeout=60)
    return str(result.conversation_id), str(result.contact_id)


def log_in(server: LiveServer, page: Any, email: str) -> None:
    page.goto(f"{server.url}/login")
    page.fill('input[name="email"]', email)
    page.fill('input[name="password"]', PASSWORD)
    page.click('#login-form button[type="submit"]')
    page.wait_for_url(f"{server.url}/inbox")


def inside(inner: dict[str, float], outer: dict[str, float]) -> bool:
    return (
        inner["x"] >= outer["x"] - TOLERANCE
        and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + TOLERANCE
    )


def overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["x"] < b["x"] + b["width"] - TOLERANCE
        and b["x"] < a["x"] + a["width"] - TOLERANCE
        and a["y"] < b["y"] + b["height"] - TOLERANCE
        and b["y"] < a["y"] + a["height"] - TOLERANCE
    )


def box(locator: Any) -> dict[str, float]:
    found = locator.bounding_box()
    assert found is not None, f"{locator} is not displayed"
    return dict(found)


# Where the text is drawn, overflow included (an element's own box stays in its grid cell
# while a long word runs out of it over the next cell).
TEXT_BOX = """element => {
  const range = document.createRange();
  range.selectNodeContents(element);
  const r = range.getBoundingClientRect();
  return {x: r.x, y: r.y, width: r.width, height: r.height};
}"""


def text_box(locator: Any) -> dict[str, float]:
    found: dict[str, float] = locator.evaluate(TEXT_BOX)
    return found


def check_fits(page: Any, what: str, width: int) -> None:
    sizes = page.evaluate(
        "({scroll: document.documentElement.scrollWidth, view: window.innerWidth})"
    )
    assert sizes["view"] == width
    assert sizes["scroll"] <= sizes["view"], f"{what} at {width} px is {sizes['scroll']} px wide"


def check_card(page: Any, what: str, width: int) -> None:
    card = page.locator("#contact-card")
    card.wait_for()
    card_box = box(card)
    for name in ("lifecycle", "responsible_id"):
        select = box(card.locator(f'select[name="{name}"]'))
        assert inside(select, card_box), f"{what} at {width} px: the {name} select leaves the card"
    labels = card.locator(".attr")
    assert labels.count() == len(ATTRIBUTES)
    for index in range(labels.count()):
        row = labels.nth(index)
        label, value = text_box(row.locator(".attr-label")), text_box(row.locator(".attr-value"))
        assert not overlap(label, value), (
            f"{what} at {width} px: the label of {row.get_attribute('data-attribute')}"
            " overlaps its value"
        )
        assert inside(label, card_box) and inside(value, card_box)


@pytest.mark.parametrize("width", WIDTHS)
def test_every_page_fits_the_screen_and_the_card_keeps_its_parts_apart(
    live_server: LiveServer, page: Any, width: int
) -> None:
    server = live_server
    conversation_id, contact_id = seed(server)
    create_user(server.runtime, "olga@example.com", "operator", name="Olga")
    page.set_viewport_size({"width": width, "height": 900})
    log_in(server, page, "olga@example.com")

    page.goto(f"{server.url}/inbox/{conversation_id}")
    check_card(page, "the inbox", width)  # the card beside the conversation (loaded by HTMX)
    page.locator("#thread article.message").first.wait_for()
    check_fits(page, "the inbox", width)
    assert page.locator("#contact-card .cc-head").get_by_text("Lifecycle").is_visible()
    screenshot(page, f"layout-inbox-{width}")

    page.goto(f"{server.url}/contacts/{contact_id}")
    check_card(page, "the client's page", width)
    check_fits(page, "the client's page", width)
    screenshot(page, f"layout-contact-{width}")

    pages = (("/inbox", "inbox-list"), ("/contacts", "contacts"), ("/tasks?scope=all", "tasks"))
    for path, name in pages:
        page.goto(f"{server.url}{path}")
        check_fits(page, path, width)
        screenshot(page, f"layout-{name}-{width}")


def test_the_lifecycle_is_called_so_in_russian_too(live_server: LiveServer, page: Any) -> None:
    server = live_server
    _, contact_id = seed(server)
    create_user(server.runtime, "irina@example.com", "operator", name="Irina", locale="ru")
    page.set_viewport_size({"width": 390, "height": 900})
    log_in(server, page, "irina@example.com")
    page.goto(f"{server.url}/contacts/{contact_id}")
    check_card(page, "the client's page (ru)", 390)
    check_fits(page, "the client's page (ru)", 390)
    head = page.locator("#contact-card .cc-head").inner_text()
    assert "Жизненный цикл" in head and "Этап" not in head
    screenshot(page, "layout-contact-ru-390")
