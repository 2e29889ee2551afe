"""The saved segments screen: list with live counts, create, edit, delete; roles; Russian.

Contacts: Анна and Борис tagged vip, Вера without a tag, so "tag=vip" matches 2 of 3.
"""

# ruff: noqa: RUF001, RUF002

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_runtime
from tests.web.helpers import web_client
from threadline.projections.saved_segments import saved_segment_named, saved_segments
from threadline.services.runtime import Runtime
from threadline.services.web import routes_auth
from threadline.services.web.login_limit import LoginLimiter


@pytest.fixture
def runtime(sqlite_url: str, tmp_path: Path) -> Iterator[Runtime]:
    rt = make_runtime(sqlite_url, attachments_dir=str(tmp_path / "attachments"))
    routes_auth.limiter = LoginLimiter()
    app = rt.app
    app.create_contact("test", "Анна", tags=["vip"])
    app.create_contact("test", "Борис", tags=["vip"])
    app.create_contact("test", "Вера")
    assert rt.wait_for_views(app.recorder.max_notification_id(), timeout=60)
    try:
        yield rt
    finally:
        rt.close()


def errors_in(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-error-for="([^"]+)">([^<]*)<', html))


def test_create_edit_delete_with_live_counts(runtime: Runtime) -> None:
    client, csrf, _ = web_client(runtime, "manager")
    form = {"csrf_token": csrf, "name": "VIP", "description": "Best", "filter": "tag=vip"}
    created = client.post("/segments/new", data=form, follow_redirects=False)
    assert created.status_code == 303, created.text
    page = client.get(created.headers["location"])
    assert page.status_code == 200
    assert "2 contacts match." in page.text and "The segment was saved." in page.text
    assert "Анна" in page.text and "Вера" not in page.text

    listed = client.get("/segments")
    assert listed.status_code == 200 and 'href="/segments"' in listed.text  # in the nav
    row = re.search(r'<tr data-segment-id="([^"]+)">(.*?)</tr>', listed.text, re.S)
    assert row is not None and ">2</a>" in row.group(2)
    segment_id = row.group(1)

    # the count of a filter as typed, before saving (the HTMX fragment)
    live = client.get("/segments/count", params={"filter": "tag=vip\nq=анна"})
    assert live.status_code == 200 and "1 contacts match." in live.text
    wrong = client.get("/segments/count", params={"filter": "abc_class=Z"})
    assert "abc_class: A, B or C" in wrong.text

    # a wrong key comes back next to the filter with 422; a taken name with 409
    bad = client.post("/segments/new", data={**form, "name": "Other", "filter": "colour=red"})
    assert bad.status_code == 422 and errors_in(bad.text) == {"filter": "colour: unknown filter"}
    taken = client.post("/segments/new", data={**form, "name": "vip"})
    assert taken.status_code == 409 and "name" in errors_in(taken.text)

    # edit: another filter, written as a query string
    edited = client.post(
        f"/segments/{segment_id}",
        data={**form, "name": "Not VIP", "filter": "lifecycle=lead&q=вера"},
        follow_redirects=False,
    )
    assert edited.status_code == 303, edited.text
    found = saved_segment_named(runtime.views, "Not VIP")
    assert found is not None and found.pairs == [("lifecycle", "lead"), ("q", "вера")]
    assert "1 contacts match." in client.get(f"/segments/{segment_id}").text

    deleted = client.post(
        f"/segments/{segment_id}/delete", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert deleted.status_code == 303
    assert saved_segments(runtime.views) == []
    assert client.get(f"/segments/{segment_id}").status_code == 404


def test_roles_and_russian(runtime: Runtime) -> None:
    runtime.app.save_segment("VIP", [("tag", "vip")], "test")
    assert runtime.wait_for_views(runtime.app.recorder.max_notification_id(), timeout=60)
    operator, csrf, _ = web_client(runtime, "operator")
    assert operator.get("/segments").status_code == 403
    refused = operator.post("/segments/new", data={"csrf_token": csrf, "name": "X", "filter": ""})
    assert refused.status_code == 403
    assert (
        saved_segments(runtime.views)[0].name == "VIP" and len(saved_segments(runtime.views)) == 1
    )
    auditor, _, _ = web_client(runtime, "auditor")
    looked = auditor.get("/segments")
    assert looked.status_code == 200 and 'href="/segments/new"' not in looked.text
    russian, _, _ = web_client(runtime, "admin", "ru")
    page = russian.get("/segments")
    assert page.status_code == 200 and "Сегменты" in page.text
    new = russian.get("/segments/new")
    assert new.status_code == 200 and "Новый сегмент" in new.text
    # the reports' slice form offers the saved segments; a picked one narrows the report
    vip = saved_segments(runtime.views)[0].id
    report = russian.get(f"/reports/funnel?segment_id={vip}")
    assert report.status_code == 200, report.text
    assert f'<option value="{vip}" selected>VIP</option>' in report.text
    unknown = russian.get("/reports/funnel?segment_id=00000000-0000-0000-0000-000000000001")
    assert unknown.status_code == 422 and "no saved segment" in unknown.text
