"""`threadline privacy`: forgetting from the command line and the retention policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest
from typer.testing import CliRunner

from tests.conftest import make_runtime
from threadline.domain.model.inbound import InboundMessage
from threadline.domain.model.pipeline import seeded_pipeline_id
from threadline.projections.base import FORGOTTEN_NAME
from threadline.services.cli import app as cli
from threadline.services.runtime import Runtime


def _client(runtime: Runtime, key: str, who: tuple[str, str], name: str) -> UUID:
    message = InboundMessage.create(
        channel="api", dedup_key=key, identities=[who], sender_name=name, text="hello"
    )
    committed = runtime.app.ingest(message)
    assert runtime.wait_for_views(committed.notification_id, timeout=60)
    return committed.value.contact_id


def _name(url: str, contact: UUID) -> str:
    runtime = make_runtime(url)
    try:
        card = runtime.queries.contact(str(contact))
        assert card is not None
        return str(card["display_name"])
    finally:
        runtime.close()


def test_retention_forgets_the_inactive_clients_without_an_open_deal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path}/threadline.db"
    monkeypatch.setenv("THREADLINE_DATABASE_URL", url)
    runtime = make_runtime(url)
    try:
        quiet = _client(runtime, "m1", ("email", "quiet@example.org"), "Quiet Client")
        dealing = _client(runtime, "m2", ("phone", "+79161112233"), "Dealing Client")
        runtime.app.seed_pipelines("test")
        deal = runtime.app.create_deal(
            "test", "An order", seeded_pipeline_id("new-clients"), contact_id=dealing
        )
        assert runtime.wait_for_views(deal.notification_id, timeout=60)
    finally:
        runtime.close()
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    runner = CliRunner()

    assert runner.invoke(cli, ["privacy", "retention"]).exit_code == 2
    listed = runner.invoke(cli, ["privacy", "retention", "--before", later])
    assert listed.exit_code == 0, listed.output
    assert str(quiet) in listed.output and str(dealing) not in listed.output
    assert "--apply" in listed.output
    assert _name(url, quiet) == "Quiet Client"  # listing forgets nobody

    applied = runner.invoke(cli, ["privacy", "retention", "--before", later, "--apply"])
    assert applied.exit_code == 0, applied.output
    assert "forgot 1 contacts" in applied.output
    assert _name(url, quiet) == FORGOTTEN_NAME
    assert _name(url, dealing) == "Dealing Client"  # an open deal keeps the client
    recent = runner.invoke(cli, ["privacy", "retention", "--inactive-days", "30"])
    assert recent.exit_code == 0 and "0 clients" in recent.output

    assert runner.invoke(cli, ["privacy", "forget", "not-an-id"]).exit_code == 2
    assert runner.invoke(cli, ["privacy", "forget", str(UUID(int=5))]).exit_code == 1
    done = runner.invoke(cli, ["privacy", "forget", str(dealing)])
    assert done.exit_code == 0 and "forgot 1 contacts" in done.output, done.output
    assert _name(url, dealing) == FORGOTTEN_NAME
