"""Every `THREADLINE_*` setting in one place, read from the environment.

The README's configuration table is generated from `SETTINGS` below, so the
documentation cannot drift from what the code reads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

SETTINGS: list[tuple[str, str, str]] = [
    (
        "THREADLINE_DATABASE_URL",
        "sqlite:///var/threadline.db",
        "The event store: `sqlite:///relative/path.db`, `sqlite:////absolute/path.db` or "
        "`postgresql://user:pass@host:port/db[?schema=name]`. The folder of a SQLite file is created.",
    ),
    (
        "THREADLINE_VIEWS_URL",
        "(derived)",
        "Where the read models live. Default: beside the store (`<db>-views.db` for SQLite, the "
        "same database and schema for PostgreSQL).",
    ),
    (
        "THREADLINE_ADMIN_TOKEN",
        "(unset)",
        "A bearer token that acts as an admin; bootstraps a fresh install. Leave unset in production "
        "once real admin accounts exist.",
    ),
    ("THREADLINE_HOST", "127.0.0.1", "Address `threadline serve` listens on."),
    ("THREADLINE_PORT", "8000", "Port `threadline serve` listens on."),
    (
        "THREADLINE_TRUSTED_PROXIES",
        "(unset)",
        "Comma-separated IPs or CIDR networks of reverse proxies whose `X-Forwarded-For` / "
        "`X-Forwarded-Proto` are believed. Unset: forwarded headers are ignored and the client "
        "address is the socket peer (the login and form rate limits count it; a web-forms inbox's "
        "`trust_forwarded_for` still reads the header for forms). Set: only those proxies' headers "
        "count, and `trust_forwarded_for` is not needed.",
    ),
    (
        "THREADLINE_SECRET_KEY",
        "(key file)",
        "Fernet key (`threadline secrets new-key`) that encrypts inbox secrets and password hashes "
        "in the state database. Unset: a key file `threadline-secret.key` (mode 0600) is made "
        "beside the SQLite state database (`var/` by default; `var/` in the working directory for "
        "PostgreSQL) and the log says so. Production sets this variable, the same in every process.",
    ),
    (
        "THREADLINE_SECRET_KEY_OLD",
        "(unset)",
        "The previous key while rotating: values encrypted with it are still read, and "
        "`threadline secrets rotate` re-encrypts them with `THREADLINE_SECRET_KEY`.",
    ),
    (
        "THREADLINE_PSEUDONYM_KEY",
        "(state database)",
        "The key (64 hex digits) of the ids derived from personal values (identity claims, "
        "messages, threads). Made at a store's first start and kept in the state database, "
        "encrypted; set this only to give it to a new or restored state database "
        "(`threadline secrets pseudonym-key` prints it). A wrong key stops the start.",
    ),
    (
        "THREADLINE_MAX_BODY_BYTES",
        "1048576",
        "Largest request body accepted; larger bodies are answered 413.",
    ),
    (
        "THREADLINE_DEFAULT_REGION",
        "(unset)",
        "ISO country code used to read phone numbers written without a country code (e.g. `RU`).",
    ),
    (
        "THREADLINE_TIMEZONE",
        "UTC",
        "IANA time zone the web app shows times in for users who have not picked their own "
        "(e.g. `Europe/Moscow`).",
    ),
    (
        "THREADLINE_READ_YOUR_WRITES_TIMEOUT",
        "2.0",
        "Seconds a write request waits for the views to show its change before answering.",
    ),
    (
        "THREADLINE_READ_YOUR_WRITES_BEHIND_TIMEOUT",
        "0.5",
        "Seconds a write request waits instead while the views are known to be behind (the last "
        "wait timed out) and do not move; an answer whose change is not visible yet carries "
        "`Threadline-Views: behind`.",
    ),
    (
        "THREADLINE_DB_POOL_SIZE",
        "(per role)",
        "PostgreSQL connections each of a process's two pools (log, views) keeps open. Default "
        "by role: 2 for `serve`, 1 for the workers (see deploy/README.md for the budget).",
    ),
    (
        "THREADLINE_DB_MAX_OVERFLOW",
        "(per role)",
        "Connections each pool may open beyond THREADLINE_DB_POOL_SIZE under load. Default by "
        "role: 6 for `serve`, 4 `channels`, 3 `delivery`, 2 `triggers`, 1 `projections`.",
    ),
    (
        "THREADLINE_DB_IDLE_SECONDS",
        "60",
        "An overflow connection unused for this long is closed (one per interval per pool).",
    ),
    (
        "THREADLINE_HEALTH_VIEWS_LAG_SECONDS",
        "10",
        "`/healthz` says `degraded` when the oldest event the views have not applied is older.",
    ),
    (
        "THREADLINE_HEALTH_TRIGGERS_LAG_SECONDS",
        "60",
        "`/healthz` says `degraded` when the oldest event the trigger runner has not handled is "
        "older.",
    ),
    ("THREADLINE_LOG_LEVEL", "INFO", "Python logging level."),
    (
        "THREADLINE_PUBLIC_URL",
        "http://127.0.0.1:8000",
        "The address clients and providers reach this server at. Twilio signs webhooks against it, "
        "and it is used for Telegram webhook URLs, form pages and unsubscribe links.",
    ),
    (
        "THREADLINE_INBOXES_FILE",
        "(unset)",
        "A YAML or JSON file of inboxes (slug, channel, name, settings) applied at start. A secret "
        "setting may be written as `${ENV_NAME}` to take it from the environment.",
    ),
    (
        "THREADLINE_ATTACHMENTS_DIR",
        "var/attachments",
        "Where attachment files are stored, content-addressed by SHA-256.",
    ),
    (
        "THREADLINE_MAX_ATTACHMENT_BYTES",
        "26214400",
        "Largest attachment stored; a larger one is recorded as over the limit and the message is "
        "still ingested.",
    ),
    (
        "THREADLINE_TELEGRAM_API_URL",
        "https://api.telegram.org",
        "The Telegram Bot API server (a local Bot API server, or a test double).",
    ),
    (
        "THREADLINE_TWILIO_API_URL",
        "https://api.twilio.com",
        "The Twilio REST API base URL used for outbound SMS.",
    ),
    (
        "THREADLINE_CHANNEL_POLL_INTERVAL",
        "30",
        "Seconds between polls of a mailbox that has no IMAP IDLE, and the longest IDLE wait.",
    ),
    (
        "THREADLINE_DELIVERY_MAX_ATTEMPTS",
        "6",
        "Attempts at one outbound message before a transient error becomes a permanent failure.",
    ),
    (
        "THREADLINE_DELIVERY_RETRY_SECONDS",
        "5",
        "The first retry delay of a transient delivery error; each later retry waits twice as long.",
    ),
    (
        "THREADLINE_TRIGGERS",
        "1",
        "`0` keeps `threadline serve` from running the trigger engine (rules, timers, schedules).",
    ),
    (
        "THREADLINE_RULE_CHAIN_DEPTH",
        "3",
        "How many rules may set each other off in a chain before the next one is skipped.",
    ),
    (
        "THREADLINE_AUTOMATIC_MESSAGES_PER_DAY",
        "3",
        "Automatic (rule) messages one contact may receive in 24 hours; more are skipped.",
    ),
    (
        "THREADLINE_WEBHOOK_ALLOW",
        "(unset)",
        "Internal destinations rule webhooks may call, comma separated: CIDRs or addresses "
        "(`10.0.0.0/8`, `127.0.0.1`) and host names (`erp.internal`). Without it, webhooks to "
        "loopback, private, link-local (cloud metadata), multicast and other non-public addresses "
        "are refused at save and at send.",
    ),
    (
        "THREADLINE_CHANNELS",
        "1",
        "`0` keeps `threadline serve` from running channel pollers and the delivery worker (run them "
        "with `threadline worker channels` instead).",
    ),
    (
        "THREADLINE_REQUIRE_SERVICES",
        "(unset)",
        "Tests only: when `1`, a test whose real service (PostgreSQL) is missing fails instead of "
        "skipping. `.ci/run` sets it.",
    ),
    (
        "THREADLINE_TEST_POSTGRES_URL",
        "postgresql://postgres@127.0.0.1:5432/test",
        "Tests only: the PostgreSQL server the store tests run against (each run in its own schema).",
    ),
]


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///var/threadline.db"
    views_url: str | None = None
    admin_token: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = 1_048_576
    default_region: str | None = None
    timezone: str = "UTC"
    read_your_writes_timeout: float = 2.0
    read_your_writes_behind_timeout: float = 0.5
    db_pool_size: int | None = None
    db_max_overflow: int | None = None
    db_idle_seconds: float = 60.0
    health_views_lag_seconds: float = 10.0
    health_triggers_lag_seconds: float = 60.0
    # The part this process plays (`serve`, `api`, a worker role, `cli`): set by the command,
    # not the environment; it picks the pool sizes and names the database connections.
    role: str = "serve"
    log_level: str = "INFO"
    public_url: str = "http://127.0.0.1:8000"
    inboxes_file: str | None = None
    attachments_dir: str = "var/attachments"
    max_attachment_bytes: int = 26_214_400
    telegram_api_url: str = "https://api.telegram.org"
    twilio_api_url: str = "https://api.twilio.com"
    channel_poll_interval: float = 30.0
    delivery_max_attempts: int = 6
    delivery_retry_seconds: float = 5.0
    run_channels: bool = True
    run_triggers: bool = True
    rule_chain_depth: int = 3
    automatic_messages_per_day: int = 3
    webhook_allow: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()
    secret_key: str | None = None
    secret_key_old: str | None = None
    pseudonym_key: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        try:
            return cls(
                database_url=get("THREADLINE_DATABASE_URL") or cls.database_url,
                views_url=get("THREADLINE_VIEWS_URL"),
                admin_token=get("THREADLINE_ADMIN_TOKEN"),
                host=get("THREADLINE_HOST") or cls.host,
                port=int(get("THREADLINE_PORT") or cls.port),
                trusted_proxies=_proxies(get("THREADLINE_TRUSTED_PROXIES") or ""),
                webhook_allow=_webhook_allow(get("THREADLINE_WEBHOOK_ALLOW") or ""),
                secret_key=get("THREADLINE_SECRET_KEY"),
                secret_key_old=get("THREADLINE_SECRET_KEY_OLD"),
                pseudonym_key=get("THREADLINE_PSEUDONYM_KEY"),
                max_body_bytes=int(get("THREADLINE_MAX_BODY_BYTES") or cls.max_body_bytes),
                default_region=(get("THREADLINE_DEFAULT_REGION") or "").upper() or None,
                timezone=_time_zone(get("THREADLINE_TIMEZONE") or cls.timezone),
                read_your_writes_timeout=float(
                    get("THREADLINE_READ_YOUR_WRITES_TIMEOUT") or cls.read_your_writes_timeout
                ),
                read_your_writes_behind_timeout=float(
                    get("THREADLINE_READ_YOUR_WRITES_BEHIND_TIMEOUT")
                    or cls.read_your_writes_behind_timeout
                ),
                db_pool_size=_optional_int(get("THREADLINE_DB_POOL_SIZE"), minimum=1),
                db_max_overflow=_optional_int(get("THREADLINE_DB_MAX_OVERFLOW"), minimum=0),
                db_idle_seconds=float(get("THREADLINE_DB_IDLE_SECONDS") or cls.db_idle_seconds),
                health_views_lag_seconds=float(
                    get("THREADLINE_HEALTH_VIEWS_LAG_SECONDS") or cls.health_views_lag_seconds
                ),
                health_triggers_lag_seconds=float(
                    get("THREADLINE_HEALTH_TRIGGERS_LAG_SECONDS") or cls.health_triggers_lag_seconds
                ),
                log_level=(get("THREADLINE_LOG_LEVEL") or cls.log_level).upper(),
                public_url=(get("THREADLINE_PUBLIC_URL") or cls.public_url).rstrip("/"),
                inboxes_file=get("THREADLINE_INBOXES_FILE"),
                attachments_dir=get("THREADLINE_ATTACHMENTS_DIR") or cls.attachments_dir,
                max_attachment_bytes=int(
                    get("THREADLINE_MAX_ATTACHMENT_BYTES") or cls.max_attachment_bytes
                ),
                telegram_api_url=(
                    get("THREADLINE_TELEGRAM_API_URL") or cls.telegram_api_url
                ).rstrip("/"),
                twilio_api_url=(get("THREADLINE_TWILIO_API_URL") or cls.twilio_api_url).rstrip("/"),
                channel_poll_interval=float(
                    get("THREADLINE_CHANNEL_POLL_INTERVAL") or cls.channel_poll_interval
                ),
                delivery_max_attempts=int(
                    get("THREADLINE_DELIVERY_MAX_ATTEMPTS") or cls.delivery_max_attempts
                ),
                delivery_retry_seconds=float(
                    get("THREADLINE_DELIVERY_RETRY_SECONDS") or cls.delivery_retry_seconds
                ),
                run_channels=(get("THREADLINE_CHANNELS") or "1") not in ("0", "false", "no"),
                run_triggers=(get("THREADLINE_TRIGGERS") or "1") not in ("0", "false", "no"),
                rule_chain_depth=int(get("THREADLINE_RULE_CHAIN_DEPTH") or cls.rule_chain_depth),
                automatic_messages_per_day=int(
                    get("THREADLINE_AUTOMATIC_MESSAGES_PER_DAY") or cls.automatic_messages_per_day
                ),
            )
        except ValueError as error:
            raise SystemExit(f"invalid THREADLINE_* setting: {error}") from None

    def with_overrides(self, **changes: object) -> Settings:
        from dataclasses import replace

        return replace(self, **changes)  # type: ignore[arg-type]


def project_root() -> Path:
    return Path.cwd()


def _optional_int(value: str | None, minimum: int) -> int | None:
    """An integer setting that may be left unset (then a default applies elsewhere)."""
    if value is None:
        return None
    number = int(value)
    if number < minimum:
        raise ValueError(f"{value!r} is below {minimum}")
    return number


def _webhook_allow(value: str) -> tuple[str, ...]:
    """THREADLINE_WEBHOOK_ALLOW: CIDRs, addresses or host names (ValueError names a bad one)."""
    from threadline.triggers.destinations import DestinationPolicy

    entries = tuple(part.strip() for part in value.split(",") if part.strip())
    DestinationPolicy.parse(entries)
    return entries


def _time_zone(name: str) -> str:
    from threadline.domain.model.user import is_time_zone

    if not is_time_zone(name):
        raise ValueError(
            f"THREADLINE_TIMEZONE={name!r} is not a time zone; use an IANA name such as "
            "Europe/Moscow or UTC"
        )
    return name


def _proxies(value: str) -> tuple[str, ...]:
    """THREADLINE_TRUSTED_PROXIES: each entry must be an IP address or a network."""
    import ipaddress

    entries = tuple(part.strip() for part in value.split(",") if part.strip())
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(
                f"THREADLINE_TRUSTED_PROXIES: {entry!r} is not an IP address or network "
                "(e.g. 127.0.0.1 or 10.0.0.0/8)"
            ) from None
    return entries
