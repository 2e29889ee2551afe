"""What every `threadline` subcommand stands on: the console, the settings, the runtime, a
progress bar. Its own module so that the subcommand groups in modules of their own
(`cli_privacy`) share them with `cli` without importing it."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from threadline.services.config import Settings
from threadline.services.store import StoreUrlError

if TYPE_CHECKING:
    from threadline.services.runtime import Runtime

console = Console(stderr=True, soft_wrap=True)  # long URLs and tokens stay on one line


def load_settings() -> Settings:
    settings = Settings.from_env()
    logging.basicConfig(
        level=getattr(logging, settings.log_level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return settings


def open_runtime(
    settings: Settings, run_views: bool = True, views_in_process: bool = True, role: str = "cli"
) -> Runtime:
    """The process's runtime; `role` picks its connection budget and names its connections."""
    from threadline.services.pseudonym_key import PseudonymKeyError
    from threadline.services.runtime import Runtime
    from threadline.services.secret_box import SecretKeyError

    settings = settings.with_overrides(role=role)
    try:
        return Runtime(settings, run_views=run_views, views_in_process=views_in_process)
    except StoreUrlError as error:
        console.print(f"[red]THREADLINE_DATABASE_URL: {error}[/red]")
        raise typer.Exit(2) from None
    except SecretKeyError as error:
        console.print(f"[red]cannot read the secrets: {error}[/red]")
        raise typer.Exit(2) from None
    except PseudonymKeyError as error:
        console.print(f"[red]cannot derive the store's ids: {error}[/red]")
        raise typer.Exit(2) from None
    except Exception as error:
        console.print(
            f"[red]cannot open the store at {settings.database_url}: {error}[/red]\n"
            "Check THREADLINE_DATABASE_URL and that the database server is running."
        )
        raise typer.Exit(2) from None


def progress(label: str) -> Progress:
    return Progress(
        TextColumn(f"[bold]{label}[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    )
