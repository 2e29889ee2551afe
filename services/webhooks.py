"""The webhook worker: a rule's `webhook` action, POSTed as signed JSON, retried with backoff.

The body is the firing's payload as JSON; the header ``X-Threadline-Signature:
sha256=<hex>`` is the HMAC-SHA256 of the exact body bytes with the rule's
secret, so the receiver can check that the call is ours and unaltered. Every
attempt is an event (`WebhookAttempted`), so an auditor sees each call and
answer. A secret written as ``${NAME}`` is read from the environment at call
time; a literal one is kept in the secret store (`services.rule_secrets`), never
in the log.

The destination is checked on the address the host resolves to, once, and the
request goes to that address (`triggers.destinations`): an internal address
(loopback, private, link-local, ...) not on ``THREADLINE_WEBHOOK_ALLOW`` fails
the call permanently, before any byte is sent. Redirects are not followed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

import httpx
from eventsourcing.application import Repository

from threadline.channels.base import wait_or_stop
from threadline.domain.infrastructure.group_commit import Command, Committed
from threadline.domain.infrastructure.unit_of_work import UnitOfWork
from threadline.domain.model.automation import WebhookCall
from threadline.domain.model.rule import Rule
from threadline.projections.automation import webhook_calls
from threadline.projections.base import parse_ts
from threadline.projections.sql import ViewReader
from threadline.services.config import Settings
from threadline.services.rule_secrets import SECRET_MARK, SecretsStore, stored_secret
from threadline.triggers.destinations import DestinationPolicy, DestinationRefused

log = logging.getLogger("threadline.webhooks")

ACTOR = "worker:webhooks"
MAX_ATTEMPTS = 5
FIRST_RETRY_SECONDS = 5.0
TIMEOUT_SECONDS = 10.0
POLL_SECONDS = 0.5
_ENV = re.compile(r"^\$\{([A-Z0-9_]+)\}$")


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def destination_policy(settings: Settings) -> DestinationPolicy:
    """The operator's allow-list of internal webhook destinations."""
    return DestinationPolicy.parse(settings.webhook_allow)


def resolve_secret(secret: str) -> str:
    match = _ENV.match(secret.strip())
    return os.environ.get(match.group(1), "") if match else secret


class CommandWriter(Protocol):
    """Runs a command in the log's next batch (the application's group-commit writer)."""

    def submit(self, command: Command[None]) -> Committed[None]: ...


class WebhookWorker:
    """Calls each requested webhook, records each attempt; reads rules and calls from the log."""

    def __init__(
        self,
        repository: Repository[UUID],
        writer: CommandWriter,
        views: ViewReader,
        secrets: SecretsStore,
        policy: DestinationPolicy,
        retry_seconds: float = FIRST_RETRY_SECONDS,
    ) -> None:
        self.repository = repository
        self.writer = writer
        self.views = views
        self.secrets = secrets
        self.retry_seconds = retry_seconds
        self.policy = policy

    async def run(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(
            timeout=TIMEOUT_SECONDS, trust_env=False, follow_redirects=False
        ) as client:
            while not stop.is_set():
                try:
                    due = await asyncio.to_thread(self.due)
                except Exception:
                    log.warning("reading the webhook calls failed", exc_info=True)
                    due = []
                for call_id in due:
                    await self.call(client, call_id)
                if not due:
                    await wait_or_stop(stop, POLL_SECONDS)

    def due(self) -> list[UUID]:
        calls = webhook_calls(self.views, "requested", limit=50)
        now = datetime.now(UTC)
        ready = []
        for row in calls:
            attempts = row.attempts
            if attempts:
                last = parse_ts(row.updated_at)
                wait = timedelta(seconds=self.retry_seconds * 2 ** (attempts - 1))
                if last + wait > now:
                    continue
            ready.append(UUID(row.id))
        return ready

    async def call(self, client: httpx.AsyncClient, call_id: UUID) -> None:
        webhook: WebhookCall = await asyncio.to_thread(self.repository.get, call_id)
        if webhook.state != "requested":
            return
        created = await asyncio.to_thread(self._created_event, call_id)
        secret = await asyncio.to_thread(self._secret, created)
        body = json.dumps(
            {"id": str(call_id), **created.payload}, ensure_ascii=False, sort_keys=True
        ).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "Threadline-Webhook/1"}
        if secret:
            headers["X-Threadline-Signature"] = signature(secret, body)
        status: int | None = None
        error = ""
        refused = False
        try:
            url, extensions = await self._pinned(webhook.url, headers)
        except DestinationRefused as refusal:
            url, error, refused = None, f"refused: {refusal}", True
        except (ValueError, httpx.InvalidURL) as bad:  # nothing to retry
            url, error, refused = None, f"not a usable URL: {bad}", True
        except OSError as failure:  # the name did not resolve (now): retried
            url, error = None, f"{type(failure).__name__}: {failure}"
        if url is not None:
            try:
                response = await client.post(
                    url, content=body, headers=headers, extensions=extensions
                )
                status = response.status_code
                if not 200 <= status < 300:
                    error = f"answered {status}"
            except httpx.HTTPError as failure:
                error = f"{type(failure).__name__}: {failure}"
        attempt = webhook.attempts + 1
        permanent_refusal = refused or (
            status is not None and 400 <= status < 500 and status != 429
        )
        done = not error or permanent_refusal or attempt >= MAX_ATTEMPTS
        await asyncio.to_thread(self._record, call_id, status, error, done)
        if error:
            log.warning("webhook %s to %s: %s (attempt %d)", call_id, webhook.url, error, attempt)

    async def _pinned(self, url: str, headers: dict[str, str]) -> tuple[httpx.URL, dict[str, Any]]:
        """The URL with its host replaced by the one checked address it resolves to.

        The Host header (and, for https, the TLS server name) keep the original host, so
        virtual hosts and certificates work; the connection cannot go anywhere else.
        """
        target = httpx.URL(url)
        host = target.host
        port = target.port or (443 if target.scheme == "https" else 80)
        address = await asyncio.to_thread(self.policy.resolve, host, port)
        headers["Host"] = host if target.port is None else f"{host}:{target.port}"
        extensions: dict[str, Any] = {"sni_hostname": host} if target.scheme == "https" else {}
        return target.copy_with(host=str(address)), extensions

    def _created_event(self, call_id: UUID) -> Any:
        for event in self.repository.event_store.get(call_id, lte=1):
            return event
        raise LookupError(call_id)

    def _secret(self, created: Any) -> str:
        """The rule's secret for this call (the rule is the actor of the request)."""
        if not created.secret_set or not str(created.actor).startswith("rule:"):
            return ""
        rule: Rule = self.repository.get(UUID(created.actor.split(":", 1)[1]))
        for action in rule.definition.get("then", []):
            spec = action.get("webhook")
            if spec and spec.get("url") == created.url and spec.get("secret"):
                if spec["secret"] == SECRET_MARK:
                    return stored_secret(self.secrets, rule.id, created.url) or ""
                return resolve_secret(str(spec["secret"]))  # ${NAME}, or a rule saved before
        return ""

    def _record(self, call_id: UUID, status: int | None, error: str, done: bool) -> None:
        def command(unit: UnitOfWork) -> None:
            webhook = unit.get(call_id, WebhookCall)
            if webhook.state == "requested":
                webhook.attempted(status, error, done, ACTOR, str(call_id))

        self.writer.submit(command)
