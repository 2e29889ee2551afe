"""The manager's dashboard: the signed-in user's tasks for today, open deals by stage, and this
month's plan against the revenue won, in English and in Russian.

The manager (business time zone UTC) has: a task due two days ago (overdue, shown), a task
due a minute before the end of today (shown), a task due in three days and a task done
(neither shown); another user's overdue task is not theirs. Open deals: 1,000 and 500 RUB
in "Mutual intent" (2 deals, 1,500), 200 EUR in "Confirmation". Won this month: 3,000 RUB
and 100 USD; the plan for this month is 10,000 RUB, so 3,000 / 10,000 = 30 % done and the
USD is shown apart, never added.
"""

# ruff: noqa: RUF001

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from tests.web.helpers import create_user, web_client
from threadline.domain.model.money import Money
from threadline.domain.model.pipeline import seeded_pipeline_id, seeded_stage_id
from threadline.services.runtime import Runtime

NEW = seeded_pipeline_id("new-clients")
CONFIRM = seeded_stage_id("new-clients", "confirmation")


def build(runtime: Runtime, locale: str) -> tuple[object, str]:
    app = runtime.app
    _ = app.seed_pipelines("test").value
    client, _, me = web_client(runtime, "manager", locale=locale)
    other = create_user(runtime, "other@example.com", "manager", name="Other")
    contact = app.create_contact("test", "Клиент Иванов").value
    now = datetime.now(UTC)
    tomorrow = (now + timedelta(days=1)).date()
    end_of_today = datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=UTC)

    def task(title: str, who: object, due: datetime) -> object:
        return app.create_task("test", title, due_at=due, assignee_id=who, contact_id=contact).value

    task("Overdue call back", me, now - timedelta(days=2))
    task("Send the offer today", me, end_of_today - timedelta(minutes=1))
    task("Next week's meeting", me, now + timedelta(days=3))
    _ = app.complete_task(task("Finished one", me, now - timedelta(days=1)), "test").value
    task("Someone else's task", other, now - timedelta(days=1))

    def deal(title: str, amount: str, currency: str = "RUB", stage: str | None = None) -> object:
        return app.create_deal(
            "test", title, NEW, stage_id=stage, contact_id=contact, manager_id=me,
            amount=amount, currency=currency,
        ).value  # fmt: skip

    deal("Open A", "1000")
    deal("Open B", "500")
    deal("Open EUR", "200", "EUR", CONFIRM)
    _ = app.win_deal(deal("Won RUB", "3000"), "test").value
    _ = app.win_deal(deal("Won USD", "100", "USD"), "test").value
    month = now.strftime("%Y-%m")
    _ = app.set_sales_plan(me, month, Money.of("10000", "RUB"), "test").value  # type: ignore[arg-type]
    assert runtime.wait_for_views(app.recorder.max_notification_id(), timeout=60)
    return client, str(me)


def test_dashboard_in_english_and_russian(sqlite_runtime: Runtime) -> None:
    client, me = build(sqlite_runtime, "en")
    with client:  # type: ignore[attr-defined]
        page = client.get("/dashboard")  # type: ignore[attr-defined]
    assert page.status_code == 200, page.text
    html = page.text
    assert 'href="/dashboard"' in html and "My day" in html  # the nav link
    tasks = html.split('id="dashboard-tasks"')[1].split("</section>")[0]
    assert "Overdue call back" in tasks and "Send the offer today" in tasks
    assert "Next week" not in tasks and "Finished one" not in tasks
    assert "Someone else" not in tasks
    assert tasks.count('class="dashboard-task overdue"') >= 1
    assert tasks.index("Overdue call back") < tasks.index("Send the offer today")
    deals = html.split('id="dashboard-deals"')[1].split("</section>")[0]
    stages = re.findall(r'<tr class="dashboard-stage">(.*?)</tr>', deals, re.S)
    assert len(stages) == 2
    assert "Mutual intent" in stages[0] and "<td>2</td>" in stages[0]  # 1,000 + 500
    assert "1,500.00" in stages[0]
    assert "Confirmation" in stages[1] and "<td>1</td>" in stages[1] and "200.00" in stages[1]
    plan = html.split('id="dashboard-plan"')[1].split("</section>")[0]
    assert 'value="300000" max="1000000"' in plan  # 3,000 of 10,000 RUB in kopecks
    assert "30%" in plan
    assert "US$100.00" in plan or "$100.00" in plan  # the USD won, shown apart
    assert f"/reports/managers?manager_id={me}" in html

    # in Russian (another manager, with nothing of their own yet)
    russian, _, _ = web_client(sqlite_runtime, "manager", locale="ru")
    with russian:
        text = russian.get("/dashboard").text
    assert "Мой день" in text and "Задачи на сегодня" in text
    assert "Мои открытые сделки по этапам" in text and "У вас нет открытых сделок." in text
    assert "План продаж на этот месяц для вас не задан." in text


def test_dashboard_needs_a_login(sqlite_runtime: Runtime) -> None:
    from fastapi.testclient import TestClient

    from threadline.services.api.app import create_app

    with TestClient(create_app(sqlite_runtime)) as http:
        page = http.get("/dashboard", follow_redirects=False)
    assert page.status_code in (302, 303) and "/login" in page.headers["location"]
