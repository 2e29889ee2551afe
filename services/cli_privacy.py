"""`threadline privacy`: forgetting a client, and the retention policy, from the command line.

The web app and `POST /api/contacts/{id}/forget` forget one client on request; a
retention policy ("we keep a client's data for three years after our last contact")
forgets every client inactive for longer, run by cron (`threadline privacy retention
--inactive-days 1095 --apply`). Without `--apply` it only lists who would be forgotten.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated
from uuid import UUID

import typer

privacy_app = typer.Typer(
    help="Clients' personal data: forget a client, apply a retention policy.",
    no_args_is_help=True,
)
ACTOR = "cli:privacy"


@privacy_app.command("forget")
def privacy_forget(
    contact: Annotated[str, typer.Argument(help="the contact's id (merged contacts go too)")],
) -> None:
    """Forget a client for good: their key destroyed, every view scrubbed, their files gone."""
    from threadline.domain.model.errors import NotFound
    from threadline.services.cli_support import console, load_settings, open_runtime
    from threadline.services.forgetting import forget

    try:
        contact_id = UUID(contact)
    except ValueError:
        console.print(f"[red]{contact!r} is not a contact id (a UUID)[/red]")
        raise typer.Exit(2) from None
    runtime = open_runtime(load_settings())
    try:
        runtime.start()
        done = forget(runtime, contact_id, ACTOR)
    except NotFound:
        console.print(f"[red]no contact {contact_id}[/red]")
        raise typer.Exit(1) from None
    finally:
        runtime.close()
    console.print(
        f"forgot {len(done.contacts)} contacts; deleted {done.files_deleted} files "
        f"(kept {done.files_kept} that other clients' messages name too)"
    )


@privacy_app.command("retention")
def privacy_retention(
    inactive_days: Annotated[
        int | None,
        typer.Option(min=1, help="forget clients with no message either way for this many days"),
    ] = None,
    before: Annotated[
        datetime | None,
        typer.Option(help="...or with none since this moment (ISO 8601, UTC when no zone)"),
    ] = None,
    apply: Annotated[bool, typer.Option(help="forget them (without it: only list them)")] = False,
) -> None:
    """Apply a retention policy: forget every client inactive since a moment (no open deal)."""
    from threadline.projections.privacy import inactive_contacts
    from threadline.services.cli_support import console, load_settings, open_runtime, progress
    from threadline.services.forgetting import forget

    if (inactive_days is None) == (before is None):
        console.print("[red]give --inactive-days N or --before MOMENT (one of them)[/red]")
        raise typer.Exit(2)
    if before is None:
        assert inactive_days is not None
        cutoff = datetime.now(UTC) - timedelta(days=inactive_days)
    else:
        cutoff = before if before.tzinfo is not None else before.replace(tzinfo=UTC)
    runtime = open_runtime(load_settings())
    try:
        runtime.start()
        found = inactive_contacts(runtime.views, cutoff)
        console.print(f"{len(found)} clients with no contact since {cutoff.isoformat()}")
        if not apply:
            for contact in found[:20]:
                typer.echo(str(contact))
            if found:
                console.print("run again with --apply to forget them (this cannot be undone)")
            return
        forgotten = deleted = 0
        with progress("forgetting") as bar:
            task = bar.add_task("forget", total=len(found))
            for contact in found:
                done = forget(runtime, contact, ACTOR)
                forgotten += len(done.contacts)
                deleted += done.files_deleted
                bar.advance(task)
    finally:
        runtime.close()
    console.print(f"forgot {forgotten} contacts; deleted {deleted} files")
