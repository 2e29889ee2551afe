"""The `threadline` command: serve, worker, replay, demo, users, rates, payments, bench."""

from __future__ import annotations

import gc
import secrets
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from threadline.projections.runner import FrozenViews
from threadline.services.cli_privacy import privacy_app
from threadline.services.cli_support import console
from threadline.services.cli_support import load_settings as _settings
from threadline.services.cli_support import open_runtime as _runtime
from threadline.services.cli_support import progress as _progress
from threadline.services.config import Settings
from threadline.services.malloc_arenas import limit_malloc_arenas
from threadline.services.shutdown import ClosedOnStop

if TYPE_CHECKING:  # imported where used: `threadline --help` stays quick
    import uvicorn

    from threadline.services.runtime import Runtime

app = typer.Typer(
    help="Threadline: one log for every conversation with your clients.", no_args_is_help=True
)
users_app = typer.Typer(help="Manage operator accounts.", no_args_is_help=True)
app.add_typer(users_app, name="users")
rules_app = typer.Typer(help="Export, import and seed automation rules.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
secrets_app = typer.Typer(
    help="The key that encrypts inbox secrets and password hashes.", no_args_is_help=True
)
app.add_typer(secrets_app, name="secrets")
rates_app = typer.Typer(
    help="Exchange rates: import the Bank of Russia's daily file.", no_args_is_help=True
)
app.add_typer(rates_app, name="rates")
payments_app = typer.Typer(
    help="Payments: import bank statements (1C kl_to_1c.txt) and CSV files.", no_args_is_help=True
)
app.add_typer(payments_app, name="payments")
audit_app = typer.Typer(
    help="Tamper evidence: verify the log's hash chain, make signed checkpoints.",
    no_args_is_help=True,
)
app.add_typer(audit_app, name="audit")
app.add_typer(privacy_app, name="privacy")


def _catch_up(runtime: Runtime, label: str = "views") -> None:
    with _progress(f"catching up {label}") as bar:
        task = bar.add_task(label, total=None)

        def report(done: int, total: int) -> None:
            bar.update(task, completed=done, total=max(total, 1))

        try:
            runtime.start(report)
        except FrozenViews as error:
            console.print(f"[red]{error}[/red]")
            raise typer.Exit(2) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="seed demo data first (idempotent)")] = False,
    no_projections: Annotated[
        bool,
        typer.Option(
            "--no-projections", help="serve only; views are kept by `threadline worker projections`"
        ),
    ] = False,
) -> None:
    """Run the API (and, embedded, the views) in one process."""
    settings = _settings()
    host = host or settings.host
    port = port or settings.port
    generated_token = None
    if demo and not settings.admin_token:
        generated_token = "tl_admin_" + secrets.token_urlsafe(24)
        settings = settings.with_overrides(admin_token=generated_token)
    limit_malloc_arenas()  # before any thread starts (see the module)
    with ClosedOnStop() as life:
        life.runtime = runtime = _runtime(
            settings,
            run_views=not no_projections,
            views_in_process=False,
            role="api" if no_projections else "serve",
        )
        _start_serving(runtime, settings, host, port, demo, no_projections, generated_token)
        with life.stop.watched():  # uvicorn stops on the signal, then re-raises it here
            server = web_server(runtime, settings, host, port)
            freeze_startup_objects()
            server.run()
            if not server.started:
                sys.exit(3)  # uvicorn.run's "could not start" (the port taken, say)
    console.print("Threadline stopped")


def freeze_startup_objects() -> None:
    """Keep what start-up made out of the garbage collector's full passes.

    A full collection walks every tracked object: with the ~190,000 a started server holds, it
    took 115-270 ms on two busy cores, and a large page (a deal board of 210 cards) allocates
    enough to start one every ten requests or so. That pause was the pages' p99: at 100,000
    deals (bench/deals.py), the board's p99 went from 230 to 126 ms with this, and the worst
    `GET /api/deals` from 150 to 15 ms. Objects made later are collected as before.
    """
    gc.collect()
    gc.freeze()


def _start_serving(
    runtime: Runtime,
    settings: Settings,
    host: str,
    port: int,
    demo: bool,
    no_projections: bool,
    generated_token: str | None,
) -> None:
    """Everything `serve` does before it listens: views, demo data, channels, triggers."""
    from threadline.services.shipped import seed_shipped

    seed_shipped(runtime.app)
    if not no_projections:
        _catch_up(runtime)
    if demo:
        _seed(runtime)
    if settings.run_channels:
        runtime.channels.start()
    if settings.run_triggers and not no_projections:
        # A first start begins where the first rule was created (see TriggerRunner.start).
        runtime.start_triggers()
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    console.print(
        f"\n[bold green]Threadline is running at {url}[/bold green]  (API docs: {url}/docs)"
    )
    console.print(f"  store: {settings.database_url}")
    if demo:
        from threadline.services.demo import DEMO_EMAIL_DOMAIN, DEMO_PASSWORD

        console.print(
            f"  log in as [bold]admin@{DEMO_EMAIL_DOMAIN}[/bold] / [bold]{DEMO_PASSWORD}[/bold]"
            f" (also manager@, operator@, auditor@{DEMO_EMAIL_DOMAIN})"
        )
    if generated_token:
        console.print(f"  API admin token for this run: [bold]{generated_token}[/bold]")
        console.print(f"  try: curl -H 'Authorization: Bearer {generated_token}' {url}/api/inbox")


GRACEFUL_SHUTDOWN_SECONDS = 3
"""How long a stop waits for requests under way before uvicorn cancels them.

The live streams (`/ui/events`) end by themselves as soon as uvicorn is told to exit,
so this bounds only ordinary requests: a stop takes seconds, not as long as a browser
keeps a page open, and stays well inside Docker's and Kubernetes' 10 s and 30 s.
"""


def web_server(runtime: Runtime, settings: Settings, host: str, port: int) -> uvicorn.Server:
    """The uvicorn server `serve` runs: the app, its proxy trust, a bounded graceful stop.

    Its open `/ui/events` streams end once the server is told to exit (`should_exit`,
    which uvicorn sets on SIGTERM/SIGINT), so the stop does not wait for the browsers.
    """
    import uvicorn

    from threadline.services.api.app import create_app
    from threadline.services.web.routes_events import end_streams_when

    web = create_app(runtime)
    config = uvicorn.Config(
        web,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=proxy_allow_list(settings),
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    server = uvicorn.Server(config)
    end_streams_when(web, lambda: server.should_exit)
    return server


def proxy_allow_list(settings: Settings) -> list[str]:
    """uvicorn's forwarded-header trust: nobody unless THREADLINE_TRUSTED_PROXIES names proxies.

    uvicorn's own default believes X-Forwarded-For from 127.0.0.1, so any process on the
    host (a proxy that passes the header through, a local script) could pick the client
    address the login and form rate limits count. `serve` also turns `proxy_headers` off
    when the list is empty.
    """
    return list(settings.trusted_proxies)


def _seed(runtime: Runtime) -> None:
    from threadline.services.demo import seed_demo

    with _progress("seeding demo data") as bar:
        task = bar.add_task("demo", total=None)

        def report(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        summary = seed_demo(runtime, progress=report)
    console.print(f"  demo data: {summary}")


@app.command()
def demo(
    contacts: Annotated[int, typer.Option(min=1, max=100_000, help="how many demo contacts")] = 60,
) -> None:
    """Seed realistic demo data (Russian and English, several channels); safe to run twice."""
    from threadline.services.demo import seed_demo

    settings = _settings()
    runtime = _runtime(settings)
    try:
        _catch_up(runtime)
        with _progress("seeding demo data") as bar:
            task = bar.add_task("demo", total=contacts)

            def report(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            summary = seed_demo(runtime, contacts=contacts, progress=report)
        runtime.wait_for_views(runtime.app.recorder.max_notification_id() or 0, timeout=60)
        console.print(f"demo data: {summary}")
    finally:
        runtime.close()


@app.command()
def migrate() -> None:
    """Create or upgrade every table (log, views, state), then exit.

    Deployments run it before the other roles (compose: a one-shot service they depend
    on; Kubernetes: an init container). Safe beside running processes and against
    itself: creating tables takes turns under a PostgreSQL advisory lock. A view whose
    shape changed is emptied here and rebuilt by `threadline worker projections`.
    """
    from threadline.services.shipped import seed_shipped
    from threadline.services.web.sessions import SessionStore

    settings = _settings()
    runtime = _runtime(settings, run_views=False, role="migrate")
    try:
        SessionStore(runtime.state_db)  # the web app's table, otherwise made on first use
        seed_shipped(runtime.app)
        position = runtime.app.recorder.max_notification_id() or 0
    finally:
        runtime.close()
    console.print(f"schema ready at {settings.database_url} (log position {position})")


@app.command()
def replay(
    until: Annotated[
        datetime | None,
        typer.Option(
            help="build the views as of this moment (ISO 8601, UTC unless a zone is given)"
            " into a database of their own; the live views are untouched",
            formats=[
                "%Y-%m-%d",
                "%Y-%m-%dT%H:%M:%S",
                "%Y-%m-%d %H:%M:%S",
                "%Y-%m-%dT%H:%M:%S%z",
                "%Y-%m-%dT%H:%M:%S.%f%z",
            ],
        ),
    ] = None,
    until_position: Annotated[
        int | None, typer.Option(min=0, help="as --until, at a position of the log")
    ] = None,
    into: Annotated[
        str | None,
        typer.Option(
            help="with --until: where (a sqlite:/// or postgresql:// URL); default: beside the"
            " live views (...-views-until-N.db, or the schema <schema>_until_N)"
        ),
    ] = None,
) -> None:
    """Drop every view and rebuild it from the first event (stop the server first on SQLite);
    with --until or --until-position, build a separate, frozen set of views as of then."""
    settings = _settings()
    if until is not None or until_position is not None:
        _replay_until(settings, until, until_position, into)
        return
    if into is not None:
        console.print("[red]--into goes with --until or --until-position[/red]")
        raise typer.Exit(2)
    runtime = _runtime(settings, run_views=False)
    try:
        total = runtime.app.recorder.max_notification_id() or 0
        with _progress("replaying the log") as bar:
            task = bar.add_task("replay", total=max(total, 1))

            def report(done: int, target: int) -> None:
                bar.update(task, completed=done, total=max(target, 1))

            read = runtime.rebuild_views(report)
        console.print(f"rebuilt {len(runtime.projections)} views from {read} events")
    finally:
        runtime.close()


def _require_audit_index(runtime: Runtime) -> None:
    """Exit unless the audit index (a view) has read the whole log: moments become positions
    and histories are found through it."""
    from threadline.services.history_at import indexed_position

    head = int(runtime.app.recorder.max_notification_id() or 0)
    indexed = indexed_position(runtime.views)
    if indexed < head:
        console.print(
            f"[red]the audit index (a view) has reached position {indexed} of {head}."
            " Start the server (or run `threadline replay`) so the views catch up, then try"
            " again.[/red]"
        )
        raise typer.Exit(1)


def _replay_until(
    settings: Settings, until: datetime | None, until_position: int | None, into: str | None
) -> None:
    from threadline.projections.base import utc_ts
    from threadline.services.history_at import position_at
    from threadline.services.store import views_url_as_of
    from threadline.services.view_stack import replay_as_of, views_url_of

    if until is not None and until_position is not None:
        console.print("[red]give --until or --until-position, not both[/red]")
        raise typer.Exit(2)
    runtime = _runtime(settings, run_views=False)
    try:
        head = int(runtime.app.recorder.max_notification_id() or 0)
        if until is not None:
            moment = utc_ts(until)
            _require_audit_index(runtime)
            position = position_at(runtime.views, moment)
        else:
            assert until_position is not None
            position = min(until_position, head)
        target = into or views_url_as_of(views_url_of(settings), position)
        with _progress(f"replaying the log up to position {position}") as bar:
            task = bar.add_task("replay", total=max(position, 1))

            def report(done: int, goal: int) -> None:
                bar.update(task, completed=done, total=max(goal, 1))

            read = replay_as_of(settings, runtime.app, position, target, report)
        console.print(f"built the views as of position {position} from {read} events: {target}")
        console.print(
            "  read them (nothing moves them on) with: THREADLINE_VIEWS_URL='"
            f"{target}' THREADLINE_TRIGGERS=0 THREADLINE_CHANNELS=0 threadline serve"
            " --no-projections"
        )
    finally:
        runtime.close()


@app.command()
def worker(
    role: Annotated[
        str,
        typer.Argument(help="projections, channels (pollers + delivery), delivery or triggers"),
    ],
) -> None:
    """Run one role of the distributed mode.

    `projections` keeps every view current; `channels` runs the inbox pollers (IMAP,
    Telegram long polling) and the delivery worker; `delivery` only the delivery worker;
    `triggers` the rule engine (rules, timers, schedules; its first start begins where the
    first rule was created, later ones where it stopped). Run `threadline serve` with
    THREADLINE_CHANNELS=0 and THREADLINE_TRIGGERS=0 beside such workers.
    """
    roles = ("projections", "channels", "delivery", "triggers")
    if role not in roles:
        console.print(f"[red]unknown role {role!r}[/red]; available: {', '.join(roles)}")
        raise typer.Exit(2)
    settings = _settings()
    limit_malloc_arenas()  # before any thread starts (see the module)
    with ClosedOnStop() as life:
        life.runtime = runtime = _runtime(settings, run_views=role == "projections", role=role)
        if role == "projections":
            _catch_up(runtime)
        elif role == "triggers":
            runtime.start_triggers()
        else:
            runtime.channels.start(pollers=role == "channels")
        console.print(f"{role} worker running; Ctrl-C to stop")
        life.stop.wait()
    console.print(f"{role} worker stopped")


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Option(help="login e-mail")],
    role: Annotated[str, typer.Option(help="admin, manager, operator or auditor")],
    name: Annotated[str, typer.Option(help="display name")] = "",
    password: Annotated[
        str | None, typer.Option(help="password for the web app (min 8 characters)")
    ] = None,
    locale: Annotated[str, typer.Option(help="en or ru")] = "en",
) -> None:
    """Create an account and print its API token (shown once)."""
    from threadline.domain.model.errors import DomainError

    settings = _settings()
    runtime = _runtime(settings, run_views=False)
    try:
        committed = runtime.app.create_user(
            email, role, "cli", name=name, password=password, locale=locale
        )
    except DomainError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    finally:
        runtime.close()
    user_id, token = committed.value
    console.print(f"created {role} {email} ({user_id})")
    typer.echo(token)


@users_app.command("list")
def users_list() -> None:
    """List accounts (from the views)."""
    settings = _settings()
    runtime = _runtime(settings)
    try:
        runtime.start()
        for user in runtime.queries.users():
            typer.echo(f"{user['id']}  {user['role']:<9} {user['email']}")
    finally:
        runtime.close()


@secrets_app.command("new-key")
def secrets_new_key() -> None:
    """Print a new random key for THREADLINE_SECRET_KEY."""
    from cryptography.fernet import Fernet

    typer.echo(Fernet.generate_key().decode())


@secrets_app.command("rotate")
def secrets_rotate() -> None:
    """Re-encrypt every secret with THREADLINE_SECRET_KEY, reading THREADLINE_SECRET_KEY_OLD too.

    Stop the server first; afterwards start it with THREADLINE_SECRET_KEY alone.
    """
    from threadline.services.contact_keys import DatabaseKeyring
    from threadline.services.pseudonym_key import PseudonymKeyStore
    from threadline.services.secret_box import rotate_check_value

    settings = _settings()
    if not settings.secret_key or not settings.secret_key_old:
        console.print(
            "[red]set THREADLINE_SECRET_KEY to the new key and THREADLINE_SECRET_KEY_OLD to the "
            "key the secrets are encrypted with now[/red] (for a generated key file, its "
            "contents); make a new key with `threadline secrets new-key`"
        )
        raise typer.Exit(2)
    runtime = _runtime(settings, run_views=False)
    try:
        secrets_count = runtime.channels.secrets.rotate()
        hashes = runtime.credentials.rotate()
        PseudonymKeyStore(runtime.state_db, runtime.secret_box).rotate()
        keyring = runtime.app.personal_mapper.keyring
        contact_keys = keyring.rotate() if isinstance(keyring, DatabaseKeyring) else 0
        rotate_check_value(runtime.state_db, runtime.secret_box)
    finally:
        runtime.close()
    console.print(
        f"re-encrypted {secrets_count} inbox secrets, {hashes} password hashes and "
        f"{contact_keys} contact keys (those kept ahead for new contacts too) with the new key; "
        "from now on start with "
        "THREADLINE_SECRET_KEY alone"
    )


@secrets_app.command("pseudonym-key")
def secrets_pseudonym_key() -> None:
    """Print the store's pseudonym key (64 hex digits), to keep with the secret key.

    A new or restored state database needs it as THREADLINE_PSEUDONYM_KEY: without it the
    ids of returning clients and redelivered messages would not match the log's.
    """
    from threadline.domain.model.pseudonyms import KEYED, current

    runtime = _runtime(_settings(), run_views=False)
    try:
        pseudonyms = current()
    finally:
        runtime.close()
    if pseudonyms.scheme != KEYED:
        console.print(
            "this store's log began before keyed ids: its ids are uuid5 of the values and it "
            "has no pseudonym key"
        )
        raise typer.Exit(1)
    typer.echo(pseudonyms.key.hex())


@rules_app.command("export")
def rules_export(
    file: Annotated[str, typer.Argument(help="the YAML file to write (- for standard output)")],
) -> None:
    """Write every rule and template to a YAML file (ids kept, so an import updates them)."""
    from threadline.services.rules_io import export_rules

    runtime = _runtime(_settings())
    try:
        runtime.start()
        text, counts = export_rules(runtime)
        if file == "-":
            typer.echo(text, nl=False)
        else:
            with open(file, "w", encoding="utf-8") as out:
                out.write(text)
            console.print(f"exported {counts[0]} rules and {counts[1]} templates to {file}")
    finally:
        runtime.close()


@rules_app.command("import")
def rules_import(
    file: Annotated[str, typer.Argument(help="a YAML file written by `threadline rules export`")],
) -> None:
    """Create or update the rules and templates of a YAML file; every change is an event."""
    from threadline.services.rules_io import RulesFileError, import_rules

    runtime = _runtime(_settings())
    try:
        runtime.start()
        with open(file, encoding="utf-8") as source:
            text = source.read()
        try:
            counts = import_rules(runtime, text, actor="cli")
        except RulesFileError as error:
            console.print(f"[red]{file}: {error}[/red]\nNothing was imported; fix it and retry.")
            raise typer.Exit(2) from None
        console.print(f"imported {counts[0]} rules and {counts[1]} templates from {file}")
    finally:
        runtime.close()


@rules_app.command("defaults")
def rules_defaults() -> None:
    """Add the shipped rules and templates that are missing and update unedited shipped rules
    (rules someone edited stay as they are)."""
    from threadline.triggers.defaults import seed_defaults

    runtime = _runtime(_settings())
    try:
        runtime.start()
        console.print(
            f"added or updated {seed_defaults(runtime.app, actor='cli')} default rules and"
            " templates"
        )
    finally:
        runtime.close()


def _read_bounded(file: str, limit: int) -> bytes:
    """At most `limit` + 1 bytes of `file` (one more than allowed, so the importer can say it
    is too large); a file that cannot be read ends the command with what went wrong."""
    try:
        with open(file, "rb") as source:
            return source.read(limit + 1)
    except OSError as error:
        console.print(f"[red]cannot read {file}: {error.strerror or error}[/red]")
        raise typer.Exit(2) from None


@rates_app.command("import")
def rates_import(
    file: Annotated[
        str,
        typer.Argument(
            help="the Bank of Russia's daily file as downloaded from"
            " https://www.cbr.ru/scripts/XML_daily.asp?date_req=DD/MM/YYYY"
        ),
    ],
) -> None:
    """Record the day's rates of a Central Bank daily file; importing it again changes nothing."""
    from threadline.services.cbr_rates import MAX_FILE_BYTES, CbrFileError, import_cbr_rates

    data = _read_bounded(file, MAX_FILE_BYTES)
    runtime = _runtime(_settings())
    try:
        runtime.start()
        with _progress("recording rates") as bar:
            task = bar.add_task("rates", total=None)

            def report(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            try:
                result = import_cbr_rates(runtime.app, data, "cli", report)
            except CbrFileError as error:
                console.print(f"[red]{file}: {error}[/red]")
                raise typer.Exit(2) from None
        runtime.wait_for_views(result.last_notification_id)
        console.print(
            f"rates of {result.day.isoformat()}: {result.recorded} recorded,"
            f" {result.unchanged} already there ({result.total} in the file)"
        )
    finally:
        runtime.close()


OUTCOME_TITLES = {
    "matched": "matched (invoice paid in full)",
    "partial": "partial (the rest stays due)",
    "overpaid": "overpaid (the rest unallocated)",
    "suggested": "suggested (waits for a person)",
    "unmatched": "unmatched",
    "outgoing_linked": "outgoing, linked to a supplier order",
    "already_recorded": "already recorded",
}


@payments_app.command("import")
def payments_import(
    file: Annotated[
        str, typer.Argument(help="a 1C client-bank statement (kl_to_1c.txt) or a CSV of payments")
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="only say what importing would do; record nothing")
    ] = False,
    actor: Annotated[
        str, typer.Option(help="who the log names as having recorded the payments")
    ] = "cli",
) -> None:
    """Record a bank file's payments and match them to invoices and supplier orders; importing
    the same file again records nothing. A broken file records nothing."""
    from rich.table import Table

    from threadline.services.payments.statement_import import (
        MAX_FILE_BYTES,
        ImportFileError,
        apply_import,
        preview_import,
    )

    if not actor.strip():
        console.print("[red]--actor is empty: name who records the payments[/red]")
        raise typer.Exit(2)
    data = _read_bounded(file, MAX_FILE_BYTES)
    runtime = _runtime(_settings())
    try:
        runtime.start()
        try:
            if dry_run:
                plan = preview_import(runtime, data, Path(file).name)
                recorded = 0
            else:
                with _progress("recording payments") as bar:
                    task = bar.add_task("payments", total=None)

                    def report(done: int, total: int) -> None:
                        bar.update(task, completed=done, total=max(total, 1))

                    result = apply_import(runtime, data, actor.strip(), report)
                assert result.plan is not None
                plan, recorded = result.plan, result.recorded
        except ImportFileError as error:
            console.print(
                f"[red]{file}: {error} — fix the file and import it again;"
                " nothing was recorded[/red]"
            )
            raise typer.Exit(2) from None
        table = Table(title=f"{Path(file).name} ({plan.file_format}, {plan.encoding})")
        table.add_column("outcome")
        table.add_column("payments", justify="right")
        for kind, title in OUTCOME_TITLES.items():
            if plan.counts.get(kind):
                table.add_row(title, str(plan.counts[kind]))
        table.add_row("total", str(plan.counts.get("total", 0)))
        console.print(table)
        for warning in plan.warnings:
            console.print(f"[yellow]{warning}[/yellow]")
        if dry_run:
            console.print(
                f"dry run: nothing recorded; {plan.to_record} of {len(plan.items)} payments"
                " would be recorded"
            )
        else:
            console.print(
                f"{recorded} recorded, {len(plan.items) - recorded} already recorded"
                f" ({len(plan.items)} in the file)"
            )
    finally:
        runtime.close()


@app.command()
def bench(
    messages: Annotated[int, typer.Option(help="messages to ingest")] = 20_000,
    backend: Annotated[str, typer.Option(help="sqlite, postgres or both")] = "both",
) -> None:
    """Run bench/ingest.py from a source checkout; prints one JSON object per figure."""
    script = Path.cwd() / "bench" / "ingest.py"
    if not script.exists():
        console.print(
            "[red]bench/ingest.py not found[/red]: run this from a Threadline source checkout"
        )
        raise typer.Exit(2)
    result = subprocess.run(
        [sys.executable, str(script), "--messages", str(messages), "--backend", backend],
        check=False,
    )
    raise typer.Exit(result.returncode)


def main() -> None:
    app()


if __name__ == "__main__":
    main()


@audit_app.command("verify")
def audit_verify(
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(help="a checkpoint file to check against the stored events (repeatable)"),
    ] = None,
    trusted_key: Annotated[
        list[str] | None,
        typer.Option(help="a public key (hex) checkpoints must be signed with (repeatable)"),
    ] = None,
) -> None:
    """Walk the whole log against its SHA-256 chain; exit 1 at the first position where
    they disagree (an event changed, deleted, inserted or reordered) or a checkpoint fails."""
    import json

    from threadline.services.audit_chain import check_checkpoint

    settings = _settings()
    runtime = _runtime(settings, run_views=False, role="cli")
    try:
        chain = runtime.chain
        with _progress("verifying the chain") as bar:
            task = bar.add_task("verify", total=None)
            report = chain.verify(lambda done, total: bar.update(task, completed=done, total=total))
        failures = 0
        if report.intact:
            console.print(
                f"chain intact: {report.checked} events verified up to position"
                f" {report.sealed_position}; {report.unsealed} stored after it, not sealed yet"
            )
        else:
            failures += 1
            console.print(
                f"[red]chain broken at position {report.broken_at}: {report.reason}.[/red]"
                " Restore the store from a backup taken before that event, or investigate"
                " who wrote to the database directly."
            )
        for path in checkpoint or []:
            problem = check_checkpoint(chain, json.loads(path.read_text()), trusted_key or ())
            if problem is None:
                console.print(f"checkpoint {path}: holds")
            else:
                failures += 1
                console.print(f"[red]checkpoint {path}: {problem}[/red]")
    finally:
        runtime.close()
    if failures:
        raise typer.Exit(1)


@audit_app.command("checkpoint")
def audit_checkpoint(
    out: Annotated[Path, typer.Option(help="where to write the checkpoint (JSON)")],
    key: Annotated[
        Path,
        typer.Option(help="the Ed25519 signing key (PEM); made (mode 0600) when missing"),
    ] = Path("var/audit-signing.pem"),
) -> None:
    """Seal the log and sign its last link: keep the file away from the database (a later
    `audit verify --checkpoint FILE` catches even a rewrite of the whole chain)."""
    import json

    from threadline.services.audit_chain import load_or_make_key, make_checkpoint

    settings = _settings()
    runtime = _runtime(settings, run_views=False, role="cli")
    try:
        signed = make_checkpoint(runtime.chain, load_or_make_key(key))
    finally:
        runtime.close()
    out.write_text(json.dumps(signed, indent=2) + "\n")
    console.print(
        f"checkpoint at position {signed['position']} written to {out};"
        f" signing key {key} (public {signed['public_key']})"
    )


@audit_app.command("export")
def audit_export(
    out: Annotated[Path, typer.Option(help="a folder: events.jsonl and report.html are written")],
    contact: Annotated[
        str | None, typer.Option(help="a contact's id: its history (merged contacts too)")
    ] = None,
    date_from: Annotated[
        datetime | None,
        typer.Option("--from", help="events recorded at or after (ISO 8601, UTC)"),
    ] = None,
    date_to: Annotated[
        datetime | None, typer.Option("--to", help="events recorded before (ISO 8601, UTC)")
    ] = None,
) -> None:
    """Export the communication history (a contact's, or a period's) as JSON lines and a
    readable HTML report with actors, causes and attachments."""
    from threadline.projections.base import utc_ts
    from threadline.services.audit_export import (
        ExportScope,
        chain_state,
        exported_events,
        render_html,
        write_jsonl,
    )

    if contact is None and date_from is None and date_to is None:
        console.print("[red]give --contact ID, or --from and/or --to[/red]")
        raise typer.Exit(2)

    scope = ExportScope(contact_id=contact, start=utc_ts(date_from), end=utc_ts(date_to))
    settings = _settings()
    runtime = _runtime(settings, run_views=False, role="cli")
    try:
        _require_audit_index(runtime)
        out.mkdir(parents=True, exist_ok=True)
        with _progress("exporting events") as bar:
            task = bar.add_task("export", total=None)
            events = list(
                exported_events(
                    runtime.views,
                    runtime.app,
                    scope,
                    lambda done: bar.update(task, completed=done),
                )
            )
        with (out / "events.jsonl").open("w", encoding="utf-8") as jsonl:
            write_jsonl(iter(events), jsonl)
        html = render_html(events, scope, "cli", chain_state(runtime.chain))
        (out / "report.html").write_text(html, encoding="utf-8")
        console.print(
            f"exported {len(events)} events ({scope.describe()}) to {out / 'events.jsonl'}"
            f" and {out / 'report.html'}"
        )
    finally:
        runtime.close()
