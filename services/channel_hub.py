"""The channels of one process: inbox configuration, adapters, pollers and background workers.

Webhook routes use `inbox`, `adapter` and `ingest`; `threadline serve` (and
`threadline worker channels`) call `start`, which runs every enabled inbox's
poller and the workers it was built with (delivery, webhooks, notification
mail, campaigns: `services.components`) on one asyncio loop in a background thread. The
loop re-reads the inbox list every few seconds, so an inbox configured through
the API starts polling without a restart.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

from threadline.channels.attachments import AttachmentStore
from threadline.channels.base import (
    ChannelAdapter,
    ChannelOptions,
    ChannelServices,
    InboxConfig,
    RetryOutcome,
    describe_error,
    wait_or_stop,
)
from threadline.channels.registry import adapter_class, load_adapters
from threadline.channels.settings import validate_settings
from threadline.domain.infrastructure.group_commit import Committed
from threadline.domain.model.errors import Conflict, InvalidInput, NotFound
from threadline.domain.model.inbound import InboundMessage, IngestResult
from threadline.domain.model.inbox import Inbox, clean_slug, inbox_id_for
from threadline.projections.inboxes import inbox_ids
from threadline.projections.sql import ViewDatabase, ViewReader
from threadline.services.channel_rejections import RejectionStore
from threadline.services.channel_state import ChannelStateStore, SecretStore, ensure_tables
from threadline.services.config import Settings
from threadline.services.poller_health import PollerHealth
from threadline.services.secret_box import SecretBox

log = logging.getLogger("threadline.channels")

RECONCILE_SECONDS = 3.0
POLLER_RESTART_SECONDS = 5.0
_ENV_REFERENCE = re.compile(r"^\$\{([A-Z0-9_]+)\}$")


class InboxLog(Protocol):
    """What the hub writes to the log: inbound messages and inbox configurations."""

    def ingest(self, message: InboundMessage) -> Committed[IngestResult]: ...

    def configure_inbox(
        self,
        slug: str,
        channel: str,
        name: str,
        settings: dict[str, Any],
        secret_names: list[str],
        actor: str,
        enabled: bool | None = None,
        create_only: bool = False,
    ) -> Committed[UUID]: ...


class AggregateReader(Protocol):
    """Aggregates by id (the application's repository): the hub reads `Inbox` aggregates."""

    def get(self, aggregate_id: UUID, *, version: int | None = None) -> Any: ...


class Worker(Protocol):
    """A background loop the hub runs beside the pollers (delivery, webhooks, ...)."""

    async def run(self, stop: asyncio.Event) -> None: ...


WaitForViews = Callable[[int | None], bool]
"""Read-your-writes: block until the views show a position (True if they do in time)."""


@dataclass(frozen=True)
class ChannelStores:
    """The hub's tables in the state database: channel state, secrets, rejected messages."""

    state: ChannelStateStore
    secrets: SecretStore
    rejections: RejectionStore

    @classmethod
    def open(cls, state_db: ViewDatabase, box: SecretBox) -> ChannelStores:
        """Create the tables if need be; secrets still stored in plain text get encrypted."""
        ensure_tables(state_db)
        secrets = SecretStore(state_db, box)
        secrets.encrypt_plaintext()
        rejections = RejectionStore(state_db)
        rejections.ensure_table()
        return cls(state=ChannelStateStore(state_db), secrets=secrets, rejections=rejections)


class ChannelHub:
    """Inboxes, their adapters and pollers, and the background workers of one process.

    Built by `threadline.services.components.build_components` from narrow parts: the
    log it writes inboxes and inbound messages to, the aggregates it reads inboxes from, the
    views it lists inboxes from, its stores, read-your-writes waiting and the workers
    to run (a factory: each `start` runs fresh ones).
    """

    def __init__(
        self,
        settings: Settings,
        writer: InboxLog,
        aggregates: AggregateReader,
        views: ViewReader,
        stores: ChannelStores,
        wait_for_views: WaitForViews,
        workers: Callable[[], Sequence[Worker]] = tuple,
    ) -> None:
        self.settings = settings
        self.writer = writer
        self.aggregates = aggregates
        self.views = views
        self.wait_for_views = wait_for_views
        self.workers = workers
        self.state = stores.state
        self.secrets = stores.secrets
        self.rejections = stores.rejections
        self.attachments = AttachmentStore(settings.attachments_dir, settings.max_attachment_bytes)
        self.options = ChannelOptions(
            public_url=settings.public_url,
            telegram_api_url=settings.telegram_api_url,
            twilio_api_url=settings.twilio_api_url,
            default_region=settings.default_region,
            poll_interval=settings.channel_poll_interval,
        )
        self.health = PollerHealth(settings.channel_poll_interval)
        self.services = ChannelServices(
            ingest=self._ingest_async,
            state=self.state,
            attachments=self.attachments,
            options=self.options,
            rejections=self.rejections,
            health=self.health,
        )
        self._adapters: dict[str, tuple[InboxConfig, ChannelAdapter]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()

    # -- inboxes ----------------------------------------------------------------------------

    def inbox(self, slug: str) -> InboxConfig | None:
        """The inbox with this slug, secrets resolved; None if there is none."""
        try:
            inbox_id = inbox_id_for(slug)
        except InvalidInput:
            return None
        return self.inbox_by_id(inbox_id)

    def inbox_by_id(self, inbox_id: UUID) -> InboxConfig | None:
        try:
            aggregate = self.aggregates.get(inbox_id)
        except Exception:  # AggregateNotFoundError, or an id of something else
            return None
        if not isinstance(aggregate, Inbox):
            return None
        secrets = self.secrets.get_all(aggregate.slug)
        return InboxConfig(
            id=aggregate.id,
            slug=aggregate.slug,
            channel=aggregate.channel,
            name=aggregate.name,
            settings=dict(aggregate.settings),
            secrets={k: v for k, v in secrets.items() if k in aggregate.secret_names},
            enabled=aggregate.enabled,
        )

    def inboxes(self, channel: str | None = None, enabled_only: bool = True) -> list[InboxConfig]:
        """Configured inboxes, read from the `inboxes` view, in slug order."""
        found = [self.inbox_by_id(UUID(i)) for i in inbox_ids(self.views, channel, enabled_only)]
        return [inbox for inbox in found if inbox is not None]

    def configure(
        self,
        slug: str,
        channel: str,
        name: str,
        settings: dict[str, Any],
        actor: str,
        enabled: bool | None = None,
        create_only: bool = False,
    ) -> InboxConfig:
        """Validate against the channel's settings schema, keep secrets aside, record the rest."""
        slug = clean_slug(slug)
        adapter = adapter_class(channel)
        if adapter is None:
            known = ", ".join(sorted(load_adapters()))
            raise InvalidInput("channel", f"unknown channel; one of: {known}")
        current = self.inbox(slug)
        if current is not None and create_only:
            # Before anything is stored: a refused create must not touch the existing secrets.
            raise Conflict(f"an inbox with slug {slug!r} exists")
        if current is not None and current.channel != channel:
            raise InvalidInput("channel", f"inbox {slug} is a {current.channel} inbox")
        # Each setting checked by its type (`channels.settings`, the admin form's rules too).
        kept = current.secrets if current is not None else {}
        plain, secret_values = validate_settings(
            adapter.settings_schema, settings, kept, self.options.default_region
        )
        secret_names = sorted({*secret_values, *kept})
        if secret_values:
            self.secrets.put(slug, secret_values)
        committed = self.writer.configure_inbox(
            slug,
            channel,
            name,
            plain,
            secret_names,
            actor,
            enabled=enabled,
            create_only=create_only,
        )
        self.wait_for_views(committed.notification_id)
        configured = self.inbox(slug)
        assert configured is not None
        log.info("inbox %s (%s) configured by %s", slug, channel, actor)
        return configured

    def describe(self, inbox: InboxConfig) -> dict[str, Any]:
        """The inbox as the API shows it: secrets only as "set" or not, never their values."""
        adapter = adapter_class(inbox.channel)
        secret_fields = adapter.secret_fields() if adapter else set()
        return {
            "id": str(inbox.id),
            "slug": inbox.slug,
            "channel": inbox.channel,
            "name": inbox.name,
            "enabled": inbox.enabled,
            "settings": dict(inbox.settings),
            "secrets": {name: name in inbox.secrets for name in sorted(secret_fields)},
        }

    def apply_inboxes_file(self, path: str) -> int:
        """Apply THREADLINE_INBOXES_FILE; `${NAME}` values come from the environment."""
        text = Path(path).read_text()
        if path.endswith((".yaml", ".yml")):
            import yaml

            document = yaml.safe_load(text) or {}
        else:
            document = json.loads(text or "{}")
        entries = document.get("inboxes", document) if isinstance(document, dict) else document
        if not isinstance(entries, list):
            raise SystemExit(f"{path}: expected a list of inboxes (or an `inboxes:` key)")
        for entry in entries:
            settings = {k: _expand(v, path) for k, v in (entry.get("settings") or {}).items()}
            self.configure(
                entry["slug"],
                entry["channel"],
                entry.get("name") or entry["slug"],
                settings,
                actor="config-file",
                enabled=entry.get("enabled"),
            )
        return len(entries)

    # -- adapters ---------------------------------------------------------------------------

    def adapter(self, inbox: InboxConfig) -> ChannelAdapter:
        """The adapter of an inbox, built once per configuration."""
        with self._lock:
            cached = self._adapters.get(inbox.slug)
            if cached is not None and cached[0] == inbox:
                return cached[1]
            adapter_type = adapter_class(inbox.channel)
            if adapter_type is None:
                raise NotFound("channel module", inbox.channel)
            adapter = adapter_type(inbox, self.services)
            self._adapters[inbox.slug] = (inbox, adapter)
            return adapter

    # -- ingestion --------------------------------------------------------------------------

    def ingest(self, message: InboundMessage) -> IngestResult:
        """Append one inbound message and wait until the views show it (webhooks use this)."""
        committed = self.writer.ingest(message)
        self.wait_for_views(committed.notification_id)
        return committed.value

    async def _ingest_async(self, message: InboundMessage) -> IngestResult:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._ingest_commit_only, message)

    async def _ingest_seen_async(self, message: InboundMessage) -> IngestResult:
        """Ingest and wait for the views, for a caller that answers a person (a retry)."""
        return await asyncio.to_thread(self.ingest, message)

    def _ingest_commit_only(self, message: InboundMessage) -> IngestResult:
        return self.writer.ingest(message).value

    # -- the background loop ----------------------------------------------------------------

    def start(self, delivery: bool = True, pollers: bool = True) -> None:
        """Run pollers and the delivery worker in a background thread until `stop`."""
        if self._thread is not None:
            return
        if self.settings.inboxes_file:
            count = self.apply_inboxes_file(self.settings.inboxes_file)
            log.info("applied %d inboxes from %s", count, self.settings.inboxes_file)
        self._thread = threading.Thread(
            target=self._thread_main, args=(delivery, pollers), name="channels", daemon=True
        )
        self._thread.start()
        self._ready.wait(10)

    def stop(self) -> bool:
        """Stop the hub's thread; True if it was running."""
        if self._loop is None or self._stop is None or self._thread is None:
            return False
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=15)
        self._thread = None
        return True

    def call_soon(self, callback: Callable[[], None]) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(callback)

    def _thread_main(self, delivery: bool, pollers: bool) -> None:
        asyncio.run(self._main(delivery, pollers))

    async def _main(self, delivery: bool, pollers: bool) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._ready.set()
        tasks: list[asyncio.Task[None]] = []
        if delivery:
            for worker in self.workers():
                tasks.append(asyncio.create_task(worker.run(self._stop)))
        if pollers:
            tasks.append(asyncio.create_task(self._supervise_pollers(self._stop)))
        await self._stop.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for _, adapter in list(self._adapters.values()):
            try:
                await adapter.aclose()
            except Exception:
                log.warning("closing the %s adapter failed", adapter.channel, exc_info=True)

    async def _supervise_pollers(self, stop: asyncio.Event) -> None:
        running: dict[str, tuple[InboxConfig, asyncio.Event, asyncio.Task[None]]] = {}
        try:
            while not stop.is_set():
                try:
                    wanted = {
                        inbox.slug: inbox
                        for inbox in await asyncio.to_thread(self.inboxes)
                        if _has_poller(inbox.channel)
                    }
                except Exception:
                    log.warning("reading the inbox list failed", exc_info=True)
                    wanted = {k: v[0] for k, v in running.items()}
                for slug, (config, poller_stop, task) in list(running.items()):
                    # A poller that returned (a webhook-mode inbox) stays finished until
                    # its inbox changes; a crashing one restarts itself in _run_poller.
                    if wanted.get(slug) != config:
                        poller_stop.set()
                        task.cancel()
                        await asyncio.gather(task, return_exceptions=True)
                        del running[slug]
                        self.health.forget(slug)
                for slug, config in wanted.items():
                    if slug not in running:
                        poller_stop = asyncio.Event()
                        task = asyncio.create_task(self._run_poller(config, poller_stop))
                        running[slug] = (config, poller_stop, task)
                await wait_or_stop(stop, RECONCILE_SECONDS)
        finally:
            for _, poller_stop, task in running.values():
                poller_stop.set()
                task.cancel()
            await asyncio.gather(*(t for _, _, t in running.values()), return_exceptions=True)
            for slug in running:
                self.health.forget(slug)

    async def _run_poller(self, inbox: InboxConfig, stop: asyncio.Event) -> None:
        """Keep one inbox's poller running; a crash is logged, counted (`/healthz` shows a
        poller that keeps failing) and the poller restarted."""
        self.health.started(inbox.slug, inbox.channel)
        while not stop.is_set():
            try:
                await self.adapter(inbox).run(stop)
                self.health.forget(inbox.slug)  # nothing to poll (a webhook-mode inbox)
                return
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.health.failed(inbox.slug, describe_error(error))
                log.exception(
                    "the %s poller of inbox %s failed; restarting in %.0f s",
                    inbox.channel,
                    inbox.slug,
                    POLLER_RESTART_SECONDS,
                )
                await wait_or_stop(stop, POLLER_RESTART_SECONDS)

    # -- health and rejections --------------------------------------------------------------

    def poller_health(self) -> dict[str, dict[str, Any]]:
        """Each running poller by inbox slug: state, last success, failures, last error."""
        return self.health.snapshot()

    def retry_rejection(self, slug: str, rejection_id: str) -> dict[str, Any]:
        """Fetch one rejected message again and ingest it; a success removes the rejection.

        Runs on its own event loop (the caller is an API thread), with a fresh adapter, so
        it neither waits for nor disturbs the inbox's poller; the dedup key makes a
        message the poller ingests meanwhile a duplicate, never a second copy.
        """
        inbox = self.inbox(slug)
        stored = self.rejections.get(slug, rejection_id) if inbox is not None else None
        if inbox is None or stored is None:
            raise NotFound("rejected message", rejection_id)
        adapter_type = adapter_class(inbox.channel)
        if adapter_type is None or adapter_type.retry is ChannelAdapter.retry:
            raise Conflict(f"the {inbox.channel} channel cannot fetch a message again")
        services = dataclasses.replace(self.services, ingest=self._ingest_seen_async)
        adapter = adapter_type(inbox, services)
        outcome, reason, result = asyncio.run(adapter.retry(stored.rejection()))
        answer: dict[str, Any] = {"id": stored.id, "outcome": outcome.value, "reason": reason}
        if outcome is RetryOutcome.INGESTED and result is not None:
            self.rejections.delete(slug, stored.id)
            answer.update(
                message_id=str(result.message_id),
                conversation_id=str(result.conversation_id),
                duplicate=result.duplicate,
            )
        log.info("rejected message %s of inbox %s retried: %s", stored.id, slug, outcome.value)
        return answer


def _has_poller(channel: str) -> bool:
    adapter = adapter_class(channel)
    return adapter is not None and adapter.run is not ChannelAdapter.run


def _expand(value: Any, path: str) -> Any:
    if isinstance(value, str):
        match = _ENV_REFERENCE.match(value.strip())
        if match:
            name = match.group(1)
            if name not in os.environ:
                raise SystemExit(f"{path}: the environment variable {name} is not set")
            return os.environ[name]
    return value
