"""Channel ingest throughput over real HTTP and IMAP, against the plain `POST /api/inbound`.

This script starts a real `threadline serve` (SQLite, the default embedded mode) as a child
process, configures a Telegram and a Twilio inbox and a web form through the API, and then,
from a second process (multiprocessing "spawn") with a bounded number of keep-alive loopback
connections, sends N unique requests of one kind at a time:

1. ``api``: `POST /api/inbound` (the baseline: the same ingest without a provider format),
2. ``telegram``: `POST /hooks/telegram/<inbox>` with real update JSON and the secret header,
3. ``twilio_sms``: `POST /hooks/twilio/sms`, urlencoded and signed with the Twilio SDK,
4. ``webform``: `POST /forms/<slug>` with a JSON submission,
5. ``api`` again: the store grows during the run, so the baseline is the mean of both.

Then, when Dovecot is installed, it appends M e-mails to a fresh mailbox, configures an
e-mail inbox on it and times the poller until the views show all M, against the API path
at concurrency 1 (the poller ingests one message at a time), measured before and after.

stdout carries one JSON object per figure; progress goes to stderr. The exit code is 0
when every measurement completed (whatever the figures), 1 when something failed: a
non-2xx answer, a transport error, a missed deadline, an exception. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from email.header import Header
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlencode

import httpx
from twilio.request_validator import RequestValidator

from threadline.domain.model.form import MAX_RATE_LIMIT

REPO = Path(__file__).resolve().parents[1]
ADMIN_TOKEN = "tl-bench-admin-" + uuid.uuid4().hex
BOT_ID = 7_000_000_001
BOT_TOKEN = f"{BOT_ID}:AAH-bench-token_abcdefghijklmnopqrstuvw"
TELEGRAM_SECRET = "bench-webhook-secret_" + uuid.uuid4().hex[:12]
TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "bench-twilio-auth-token-0123456789"
OUR_NUMBER = "+15017122661"
TELEGRAM_INBOX = "bench-telegram"
TWILIO_INBOX = "bench-twilio"
EMAIL_INBOX = "bench-mail"
FORM_SLUG = "bench-form"
FORM_SHARE = int(MAX_RATE_LIMIT * 0.9)  # submissions per form: the per-IP limit is per minute
NEW_SENDER_SHARE = 0.7
DOVECOT = Path("/usr/sbin/dovecot")
START_TIMEOUT = 60.0
STOP_GRACE = 10.0
EMAIL_STALL_SECONDS = 60.0
WORDS = (
    *("hello", "order", "delivery", "invoice", "refund", "question", "thanks", "please"),
    *("tomorrow", "account", "payment", "address", "parcel", "tracking", "status"),
    *("urgent", "support", "price", "discount", "call", "back", "weekend", "office"),
)
CYRILLIC = (
    *("заказ", "доставка", "счёт", "возврат", "вопрос", "спасибо", "пожалуйста", "завтра"),
    *("оплата", "адрес", "посылка", "статус", "срочно", "поддержка", "цена", "скидка"),
)
NAMES = ("Анна", "Иван", "Ольга", "Пётр", "Maria", "John", "Fatima", "Chen")


class DeadlineExceeded(Exception):
    """The run's --deadline passed before a phase could finish."""


def log(text: str) -> None:
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def emit(**fields: Any) -> None:
    print(json.dumps({"bench": "channels", **fields}, ensure_ascii=False), flush=True)


def remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded("the --deadline passed")
    return left


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- CPU accounting -----------------------------------------------------------------------------


def session_cpu_seconds(session: int) -> float:
    """User+system CPU of every live process in a session (a child started with its own).

    The server runs its views in a child process, Dovecot forks per login; summing the
    session shows where the CPU of a phase went without psutil.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session:  # field 6 of stat: the session id
            total += int(fields[11]) + int(fields[12])  # fields 14, 15: utime, stime
    return total / ticks


# -- the server ---------------------------------------------------------------------------------


class Server:
    """One `threadline serve` on 127.0.0.1, in a session of its own so all of it can be ended."""

    def __init__(self, workdir: Path, poll_interval: float) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "server.log"
        self.database_url = f"sqlite:///{workdir / 't.db'}"
        self.poll_interval = poll_interval
        self.process: subprocess.Popen[bytes] | None = None

    def environment(self) -> dict[str, str]:
        """The caller's environment minus any THREADLINE_* that could point at other data."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("THREADLINE_")}
        env.update(
            THREADLINE_DATABASE_URL=self.database_url,
            THREADLINE_ADMIN_TOKEN=ADMIN_TOKEN,
            THREADLINE_HOST="127.0.0.1",
            THREADLINE_PORT=str(self.port),
            THREADLINE_PUBLIC_URL=self.base_url,
            THREADLINE_CHANNEL_POLL_INTERVAL=f"{self.poll_interval:g}",
            THREADLINE_TRIGGERS="0",
            THREADLINE_ATTACHMENTS_DIR=str(self.workdir / "attachments"),
            PYTHONUNBUFFERED="1",
            COLUMNS="200",
        )
        return env

    def start(self, deadline: float) -> None:
        executable = Path(sys.executable).with_name("threadline")
        if not executable.exists():
            raise RuntimeError(f"{executable} is missing: pip install -e . into this venv")
        command = [str(executable), "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log_path.open("wb") as output:
            self.process = subprocess.Popen(
                command,
                cwd=self.workdir,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        limit = time.monotonic() + min(START_TIMEOUT, remaining(deadline))
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the server exited with {self.process.returncode}\n{self.tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}/healthz", timeout=2.0).status_code == 200:
                    return
            if time.monotonic() > limit:
                raise RuntimeError(f"the server did not answer /healthz in time\n{self.tail()}")
            time.sleep(0.1)

    def cpu_seconds(self) -> float:
        return session_cpu_seconds(self.process.pid) if self.process else 0.0

    def stop(self) -> None:
        """SIGTERM, SIGKILL after a grace period, then SIGKILL whatever is left of its group."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_GRACE)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # e.g. the views child

    def tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no server log)"
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(text)


def api_client(server: Server) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=30.0,
    )


def configure(server: Server, forms: int) -> None:
    """The Telegram and Twilio inboxes and the form(s) the webhooks go to."""
    with api_client(server) as client:
        for body in (
            {
                "slug": TELEGRAM_INBOX,
                "channel": "telegram",
                "name": "Bench Telegram",
                "settings": {"bot_token": BOT_TOKEN, "webhook_secret": TELEGRAM_SECRET},
            },
            {
                "slug": TWILIO_INBOX,
                "channel": "twilio",
                "name": "Bench Twilio",
                "settings": {
                    "account_sid": TWILIO_SID,
                    "auth_token": TWILIO_TOKEN,
                    "phone_number": OUR_NUMBER,
                },
            },
        ):
            response = client.post("/api/inboxes", json=body)
            if response.status_code != 201:
                raise RuntimeError(f"inbox {body['slug']}: {response.status_code} {response.text}")
        for number in range(forms):
            form = {
                "slug": f"{FORM_SLUG}-{number + 1}",
                "name": "Bench contact form",
                "fields": [
                    {"name": "full_name", "label": "Your name", "required": True},
                    {"name": "email", "label": "E-mail", "type": "email", "required": True},
                    {"name": "message", "label": "Message", "type": "textarea"},
                ],
                "mapping": {"full_name": "name", "email": "email"},
                "rate_limit_per_minute": MAX_RATE_LIMIT,
            }
            response = client.post("/api/forms", json=form)
            if response.status_code != 201:
                raise RuntimeError(f"form {form['slug']}: {response.status_code} {response.text}")


# -- the requests -------------------------------------------------------------------------------

Request = tuple[str, bytes, dict[str, str]]
"""path, body, headers: what the load process sends, built before any clock starts."""


@dataclass
class Senders:
    """~70% of messages come from a new sender, the rest from one seen earlier in the batch."""

    rng: random.Random
    start: int
    seen: list[int] = field(default_factory=list)

    def next(self) -> tuple[int, bool]:
        if self.seen and self.rng.random() >= NEW_SENDER_SHARE:
            return self.rng.choice(self.seen), False
        number = self.start + len(self.seen)
        self.seen.append(number)
        return number, True


def _text(rng: random.Random, words: tuple[str, ...] = WORDS) -> str:
    return " ".join(rng.choice(words) for _ in range(rng.randint(8, 30))).capitalize() + "."


def _name(rng: random.Random, number: int) -> str:
    return f"{rng.choice(NAMES)} {number}"


def api_requests(count: int, tag: str, base: int, rng: random.Random) -> list[Request]:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
    senders = Senders(rng, base)
    requests: list[Request] = []
    for index in range(count):
        number, _ = senders.next()
        sender: dict[str, Any] = {"email": f"api{number}@example.com", "name": f"API {number}"}
        if number % 3 == 0:  # some integrations also know the phone number
            sender["phone"] = f"+7926{number % 10**7:07d}"
        body = {
            "channel": "api",
            "external_id": f"bench-{tag}-{index}",
            "from": sender,
            "subject": f"Order {number}",
            "text": _text(rng),
        }
        requests.append(("/api/inbound", json.dumps(body).encode(), headers))
    return requests


def telegram_requests(count: int, base: int, rng: random.Random) -> list[Request]:
    """Private-chat text messages in the Bot API's shape (as tests/channels/fake_telegram.py)."""
    headers = {
        "Content-Type": "application/json",
        "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET,
    }
    senders = Senders(rng, base)
    requests: list[Request] = []
    for index in range(count):
        number, _ = senders.next()
        user_id = 100_000_000 + number
        first, last = rng.choice(NAMES), f"T{number}"
        update = {
            "update_id": 500_000 + index,
            "message": {
                "message_id": index + 1,
                "from": {
                    "id": user_id,
                    "is_bot": False,
                    "first_name": first,
                    "last_name": last,
                    "username": f"user{user_id}",
                    "language_code": "ru",
                },
                "chat": {
                    "id": user_id,
                    "type": "private",
                    "first_name": first,
                    "last_name": last,
                    "username": f"user{user_id}",
                },
                "date": 1_760_000_000 + index,
                "text": _text(rng, CYRILLIC if index % 2 else WORDS),
            },
        }
        path = f"/hooks/telegram/{TELEGRAM_INBOX}"
        requests.append((path, json.dumps(update).encode(), headers))
    return requests


def twilio_requests(count: int, base: int, public_url: str, rng: random.Random) -> list[Request]:
    """Incoming SMS webhooks, signed with the SDK's RequestValidator for public_url + path."""
    path = "/hooks/twilio/sms"
    validator = RequestValidator(TWILIO_TOKEN)
    senders = Senders(rng, base)
    requests: list[Request] = []
    for _ in range(count):
        number, _ = senders.next()
        sid = "SM" + uuid.UUID(int=rng.getrandbits(128)).hex
        params = {
            "AccountSid": TWILIO_SID,
            "ApiVersion": "2010-04-01",
            "MessageSid": sid,
            "SmsSid": sid,
            "SmsMessageSid": sid,
            "From": f"+7916{number % 10**7:07d}",  # valid Russian mobile numbers
            "To": OUR_NUMBER,
            "Body": _text(rng),
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsStatus": "received",
        }
        signature = validator.compute_signature(public_url + path, params)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        }
        requests.append((path, urlencode(params).encode(), headers))
    return requests


def webform_requests(count: int, base: int, rng: random.Random) -> list[Request]:
    """JSON submissions, each with its own `_token` (the form's own dedup key)."""
    headers = {"Content-Type": "application/json"}
    senders = Senders(rng, base)
    requests: list[Request] = []
    for index in range(count):
        number, _ = senders.next()
        body = {
            "full_name": _name(rng, number),
            "email": f"lead{number}@example.com",
            "message": _text(rng),
            "_token": f"bench-{index}-{rng.getrandbits(64):016x}",
        }
        path = f"/forms/{FORM_SLUG}-{index // FORM_SHARE + 1}"
        requests.append((path, json.dumps(body).encode(), headers))
    return requests


def forms_needed(count: int) -> int:
    """One form per FORM_SHARE submissions, so the per-minute limit per client never answers."""
    return max(1, math.ceil(count / FORM_SHARE))


# -- the load process ---------------------------------------------------------------------------


@dataclass
class LoadResult:
    seconds: float
    latencies: list[float]
    statuses: dict[int, int]
    transport_errors: int
    unsent: int
    duplicates: int
    ignored: int
    client_cpu: float
    samples: list[str]

    @property
    def accepted(self) -> int:
        return sum(n for code, n in self.statuses.items() if 200 <= code < 300)

    @property
    def non_2xx(self) -> int:
        return sum(n for code, n in self.statuses.items() if not 200 <= code < 300)


Post = Callable[[str, bytes, dict[str, str]], Awaitable[tuple[int, bytes]]]
"""Send one request on the load process's keep-alive pool; the status and the body."""


def run_load(
    base_url: str, requests: list[Request], concurrency: int, time_limit: float, client: str
) -> LoadResult:
    """The entry point of the load process: send every request, `concurrency` at a time."""
    return asyncio.run(_load(base_url, requests, concurrency, time_limit, client))


@contextlib.asynccontextmanager
async def _httpx_post(base_url: str, concurrency: int, timeout: float) -> AsyncIterator[Post]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base_url, limits=limits, timeout=httpx.Timeout(timeout)
    ) as client:

        async def post(path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
            response = await client.post(path, content=body, headers=headers)
            return response.status_code, response.content

        # Open the keep-alive connections before the clock starts.
        await asyncio.gather(*(client.get("/healthz") for _ in range(concurrency)))
        yield post


@contextlib.asynccontextmanager
async def _aiohttp_post(base_url: str, concurrency: int, timeout: float) -> AsyncIterator[Post]:
    import aiohttp  # a dependency of the twilio SDK

    async with aiohttp.ClientSession(
        base_url=base_url,
        connector=aiohttp.TCPConnector(limit=concurrency),
        timeout=aiohttp.ClientTimeout(total=timeout),
    ) as session:

        async def post(path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
            async with session.post(path, data=body, headers=headers) as response:
                return response.status, await response.read()

        async def warm() -> None:
            async with session.get("/healthz") as response:
                await response.read()

        await asyncio.gather(*(warm() for _ in range(concurrency)))
        yield post


CLIENTS = {"aiohttp": _aiohttp_post, "httpx": _httpx_post}
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (httpx.HTTPError, OSError, TimeoutError)


async def _load(
    base_url: str, requests: list[Request], concurrency: int, time_limit: float, client: str
) -> LoadResult:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    samples: list[str] = []
    counts = {"transport": 0, "duplicates": 0, "ignored": 0}
    pending: Iterator[Request] = iter(requests)
    errors = TRANSPORT_ERRORS
    if client == "aiohttp":
        import aiohttp

        errors = (*errors, aiohttp.ClientError)
    timeout = min(60.0, max(time_limit, 1.0))
    async with CLIENTS[client](base_url, concurrency, timeout) as post:
        cpu_start = time.process_time()
        started = time.perf_counter()
        stop_at = started + time_limit

        async def worker() -> None:
            for path, body, headers in pending:
                if time.perf_counter() > stop_at:
                    return
                sent = time.perf_counter()
                try:
                    status, content = await post(path, body, headers)
                except errors as error:
                    counts["transport"] += 1
                    if len(samples) < 3:
                        samples.append(f"{path}: {type(error).__name__}: {error}")
                    continue
                latencies.append(time.perf_counter() - sent)
                statuses[status] += 1
                if b'"duplicate":true' in content:
                    counts["duplicates"] += 1
                if b'"ignored"' in content:
                    counts["ignored"] += 1
                if not 200 <= status < 300 and len(samples) < 3:
                    samples.append(f"{path}: {status} {content[:300].decode(errors='replace')}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        client_cpu = time.process_time() - cpu_start
    return LoadResult(
        seconds=seconds,
        latencies=sorted(latencies),
        statuses=dict(statuses),
        transport_errors=counts["transport"],
        unsent=len(requests) - len(latencies) - counts["transport"],
        duplicates=counts["duplicates"],
        ignored=counts["ignored"],
        client_cpu=client_cpu,
        samples=samples,
    )


def percentile(sorted_values: list[float], share: float) -> float:
    if not sorted_values:
        return math.nan
    index = min(len(sorted_values) - 1, max(0, math.ceil(share * len(sorted_values)) - 1))
    return sorted_values[index]


@dataclass
class Phase:
    """One measured batch of requests of one kind, with what it cost the server and client."""

    kind: str
    concurrency: int
    requests: int
    load: LoadResult
    server_cpu: float

    @property
    def rate(self) -> float:
        return self.load.accepted / self.load.seconds if self.load.seconds > 0 else 0.0

    def fields(self) -> dict[str, Any]:
        return {
            "p50_ms": round(percentile(self.load.latencies, 0.50) * 1000, 2),
            "p99_ms": round(percentile(self.load.latencies, 0.99) * 1000, 2),
            "requests": self.requests,
            "accepted": self.load.accepted,
            "non_2xx": self.load.non_2xx,
            "seconds": round(self.load.seconds, 3),
            "server_cpu_s": round(self.server_cpu, 2),
            "client_cpu_s": round(self.load.client_cpu, 2),
            "store": "sqlite",
            "concurrency": self.concurrency,
        }

    def problems(self) -> list[str]:
        load = self.load
        found = []
        if load.non_2xx:
            found.append(f"{self.kind}: {load.non_2xx} non-2xx answers {load.statuses}")
        if load.transport_errors:
            found.append(f"{self.kind}: {load.transport_errors} transport errors")
        if load.unsent:
            found.append(f"{self.kind}: {load.unsent} requests not sent before the deadline")
        if load.duplicates or load.ignored:
            found.append(
                f"{self.kind}: {load.duplicates} answered duplicate, {load.ignored} ignored "
                "(every request is unique)"
            )
        return found


class LoadProcess:
    """The second process that sends the load; one for the whole run (spawn start method)."""

    def __init__(self, server: Server, client: str) -> None:
        self.server = server
        self.client = client
        self.pool = multiprocessing.get_context("spawn").Pool(1)

    def run(self, kind: str, requests: list[Request], concurrency: int, deadline: float) -> Phase:
        left = remaining(deadline)
        log(f"{kind}: {len(requests)} requests, concurrency {concurrency}")
        cpu_before = self.server.cpu_seconds()
        pending = self.pool.apply_async(
            run_load, (self.server.base_url, requests, concurrency, left, self.client)
        )
        try:
            load: LoadResult = pending.get(timeout=left + 90.0)
        except multiprocessing.TimeoutError:
            raise DeadlineExceeded(f"{kind}: the load process did not finish") from None
        phase = Phase(
            kind, concurrency, len(requests), load, self.server.cpu_seconds() - cpu_before
        )
        log(
            f"{kind}: {phase.rate:.1f}/s accepted, p50 {phase.fields()['p50_ms']} ms, "
            f"statuses {load.statuses}, server CPU {phase.server_cpu:.1f} s, "
            f"client CPU {load.client_cpu:.1f} s in {load.seconds:.1f} s"
        )
        for sample in load.samples:
            log(f"{kind}: e.g. {sample}")
        return phase

    def close(self) -> None:
        self.pool.terminate()
        self.pool.join()


# -- e-mail ---------------------------------------------------------------------------------------


def raw_email(index: int, number: int, charset: str, run: str, rng: random.Random) -> bytes:
    """One e-mail starting a thread of its own (its Message-ID), so one conversation each."""
    name = f"{rng.choice(NAMES)} {number}"
    address = f"mailer{number}@example.com"
    message_id = f"<bench-{run}-{index}@mail.example.com>"
    if charset == "utf-8":
        message = EmailMessage()
        message["From"] = formataddr((name, address))
        message["To"] = "support@example.com"
        message["Subject"] = f"Вопрос {index}: {rng.choice(WORDS)}"
        message["Message-ID"] = message_id
        message["Date"] = formatdate(1_760_000_000 + index)
        message.set_content(_text(rng, CYRILLIC) + "\n\n" + _text(rng) + "\n")
        return message.as_bytes()
    # koi8-r and windows-1251 as old mail clients send them: 8bit bodies, encoded words.
    subject = Header(f"Заказ {index}: {rng.choice(CYRILLIC)}", charset).encode()
    sender = formataddr((str(Header(name, charset).encode()), address))
    headers = [
        f"From: {sender}",
        "To: support@example.com",
        f"Subject: {subject}",
        f"Message-ID: {message_id}",
        f"Date: {formatdate(1_760_000_000 + index)}",
        "MIME-Version: 1.0",
        f'Content-Type: text/plain; charset="{charset}"',
        "Content-Transfer-Encoding: 8bit",
    ]
    body = (_text(rng, CYRILLIC) + "\r\n" + _text(rng, CYRILLIC) + "\r\n").encode(charset)
    return "\r\n".join(headers).encode("ascii") + b"\r\n\r\n" + body


def email_workload(count: int, rng: random.Random) -> tuple[list[bytes], Counter[str]]:
    run = uuid.uuid4().hex[:8]
    senders = Senders(rng, 1)
    charsets: Counter[str] = Counter()
    messages = []
    for index in range(count):
        number, _ = senders.next()
        draw = rng.random()
        charset = "koi8-r" if draw < 0.15 else "windows-1251" if draw < 0.3 else "utf-8"
        charsets[charset] += 1
        messages.append(raw_email(index, number, charset, run, rng))
    return messages, charsets


def dovecot_unavailable() -> str | None:
    if not DOVECOT.exists():
        return "dovecot not installed"
    try:
        from tests.channels.dovecot import dovecot_missing
    except ImportError as error:
        return f"tests/channels/dovecot.py cannot be imported ({error})"
    return dovecot_missing()


@dataclass
class EmailRun:
    emails: int
    seconds: float
    first_seen: float | None
    in_views: int
    server_cpu: float
    dovecot_cpu: float
    append_seconds: float


def email_conversations(client: httpx.Client) -> int:
    response = client.get("/api/inbox", params={"channel": "email", "limit": 1})
    response.raise_for_status()
    return int(response.json()["total"] or 0)


def email_messages_in_views(client: httpx.Client) -> int:
    """Sum of message_count over every e-mail conversation (the end check, not the clock)."""
    total, offset = 0, 0
    while True:
        page = client.get(
            "/api/inbox", params={"channel": "email", "limit": 500, "offset": offset}
        ).json()
        items = page["items"]
        total += sum(int(item.get("message_count") or 0) for item in items)
        offset += len(items)
        if not items or offset >= int(page["total"] or 0):
            return total


def run_imap(server: Server, messages: list[bytes], deadline: float) -> EmailRun:
    """Append the mail first, then configure the inbox and time until the views hold it all."""
    from tests.channels.dovecot import Dovecot, private_root
    from tests.channels.dovecot import free_port as dovecot_port

    dovecot = Dovecot(root=private_root("threadline-bench-dovecot-"), port=dovecot_port(),
                      ssl_port=None, cert=None)  # fmt: skip
    try:
        dovecot.start()
        user = dovecot.add_user("bench")
        log(f"imap: appending {len(messages)} e-mails to {user}")
        started = time.perf_counter()
        with dovecot.imap(user) as imap:
            for raw in messages:
                remaining(deadline)
                status, detail = imap.append('"INBOX"', None, None, raw)
                if status != "OK":
                    raise RuntimeError(f"IMAP APPEND failed: {detail!r}")
        append_seconds = time.perf_counter() - started
        if dovecot.count(user) != len(messages):
            raise RuntimeError(f"the mailbox holds {dovecot.count(user)} of {len(messages)}")
        log(f"imap: appended in {append_seconds:.1f} s; configuring the inbox")
        dovecot_cpu_before = session_cpu_seconds(dovecot.process.pid) if dovecot.process else 0.0
        server_cpu_before = server.cpu_seconds()
        with api_client(server) as client:
            body = {
                "slug": EMAIL_INBOX,
                "channel": "email",
                "name": "Bench mail",
                "settings": dovecot.settings(user),
            }
            started = time.perf_counter()
            response = client.post("/api/inboxes", json=body)
            if response.status_code != 201:
                raise RuntimeError(f"e-mail inbox: {response.status_code} {response.text}")
            first_seen: float | None = None
            seen, last_change, last_log = 0, time.monotonic(), time.monotonic()
            while seen < len(messages):
                remaining(deadline)
                now_seen = email_conversations(client)
                now = time.monotonic()
                if now_seen != seen:
                    seen, last_change = now_seen, now
                    if first_seen is None:
                        first_seen = time.perf_counter() - started
                elif now - last_change > EMAIL_STALL_SECONDS:
                    raise RuntimeError(
                        f"imap: stuck at {seen} of {len(messages)} for {EMAIL_STALL_SECONDS:.0f} s"
                        f"\n{server.tail()}"
                    )
                if now - last_log > 5:
                    log(f"imap: {seen} of {len(messages)} in the views")
                    last_log = now
                if seen < len(messages):
                    time.sleep(0.1)
            seconds = time.perf_counter() - started
            server_cpu = server.cpu_seconds() - server_cpu_before
            dovecot_cpu = (
                session_cpu_seconds(dovecot.process.pid) if dovecot.process else 0.0
            ) - dovecot_cpu_before
            in_views = email_messages_in_views(client)
            # Stop the poller before Dovecot goes, so the server log stays free of reconnects.
            client.patch(f"/api/inboxes/{EMAIL_INBOX}", json={"enabled": False})
        return EmailRun(
            len(messages), seconds, first_seen, in_views, server_cpu, dovecot_cpu, append_seconds
        )
    finally:
        dovecot.stop()
        shutil.rmtree(dovecot.root, ignore_errors=True)


# -- the run --------------------------------------------------------------------------------------


@dataclass
class Outcome:
    problems: list[str] = field(default_factory=list)

    def check(self, phase: Phase) -> Phase:
        self.problems.extend(phase.problems())
        return phase


def mean_rate(phases: list[Phase]) -> float:
    return sum(p.rate for p in phases) / len(phases)


def emit_baseline(figure: str, phases: list[Phase], labels: tuple[str, str], note: str) -> float:
    for label, phase in zip(labels, phases, strict=True):
        emit(figure=figure, kind="api", run=label, value=round(phase.rate, 1), **phase.fields())
    value = mean_rate(phases)
    emit(
        figure=figure,
        kind="api",
        run="mean",
        value=round(value, 1),
        runs=[round(p.rate, 1) for p in phases],
        concurrency=phases[0].concurrency,
        store="sqlite",
        note=note,
    )
    return value


def bench_webhooks(
    args: argparse.Namespace, server: Server, load: LoadProcess, outcome: Outcome, deadline: float
) -> float:
    """The four HTTP kinds; returns the mean concurrent API baseline."""
    n, c = args.messages, args.concurrency
    rng = random.Random(args.seed)
    log(f"building {n} requests of each kind (seed {args.seed})")
    first_api = api_requests(n, "a", 1, rng)
    kinds: list[tuple[str, list[Request]]] = [
        ("telegram", telegram_requests(n, 1, rng)),
        ("twilio_sms", twilio_requests(n, 1, server.base_url, rng)),
        ("webform", webform_requests(n, 1, rng)),
    ]
    last_api = api_requests(n, "b", 10 * n + 1, rng)  # new senders are new to the store too

    first = outcome.check(load.run("api", first_api, c, deadline))
    measured = [(kind, outcome.check(load.run(kind, reqs, c, deadline))) for kind, reqs in kinds]
    last = outcome.check(load.run("api", last_api, c, deadline))
    baseline = emit_baseline(
        "api_inbound_per_s",
        [first, last],
        ("first", "last"),
        "baseline = mean of the first and the last run: the store grows during the run",
    )
    for kind, phase in measured:
        emit(
            figure="webhooks_per_s",
            kind=kind,
            value=round(phase.rate, 1),
            baseline="api_inbound",
            baseline_value=round(baseline, 1),
            baseline_runs=[round(first.rate, 1), round(last.rate, 1)],
            ratio=round(phase.rate / baseline, 3) if baseline else None,
            **phase.fields(),
        )
    return baseline


def bench_imap(
    args: argparse.Namespace,
    server: Server,
    load: LoadProcess,
    outcome: Outcome,
    deadline: float,
    concurrent_baseline: float,
) -> None:
    reason = dovecot_unavailable()
    if reason is not None:
        log(f"imap: skipped: {reason}")
        emit(figure="emails_per_s", kind="imap", skipped=reason)
        return
    m = args.emails
    rng = random.Random(args.seed + 1)
    messages, charsets = email_workload(m, rng)
    before = outcome.check(load.run("api_c1", api_requests(m, "c", 20 * m + 1, rng), 1, deadline))
    run = run_imap(server, messages, deadline)
    after = outcome.check(load.run("api_c1", api_requests(m, "d", 30 * m + 1, rng), 1, deadline))
    if run.in_views != m:
        outcome.problems.append(f"imap: {run.in_views} e-mails in the views, {m} expected")
    baseline = emit_baseline(
        "api_inbound_c1_per_s",
        [before, after],
        ("before_imap", "after_imap"),
        "concurrency 1, like the poller; baseline = mean of the runs before and after",
    )
    rate = m / run.seconds
    steady = None
    if run.first_seen is not None and run.seconds > run.first_seen:
        steady = round((m - 1) / (run.seconds - run.first_seen), 1)
    emit(
        figure="emails_per_s",
        kind="imap",
        value=round(rate, 1),
        baseline="api_inbound_c1",
        baseline_value=round(baseline, 1),
        ratio=round(rate / baseline, 3) if baseline else None,
        concurrent_baseline_value=round(concurrent_baseline, 1),
        ratio_to_concurrent=round(rate / concurrent_baseline, 3) if concurrent_baseline else None,
        emails=m,
        in_views=run.in_views,
        seconds=round(run.seconds, 3),
        first_seen_seconds=round(run.first_seen, 3) if run.first_seen is not None else None,
        steady_per_s=steady,
        append_seconds=round(run.append_seconds, 2),
        server_cpu_s=round(run.server_cpu, 2),
        dovecot_cpu_s=round(run.dovecot_cpu, 2),
        charsets=dict(charsets),
        poll_interval=args.poll_interval,
        store="sqlite",
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure channel ingest throughput (webhooks over HTTP, e-mail over IMAP) "
        "of a real `threadline serve` against POST /api/inbound in the same run. "
        "Prints JSON lines on stdout."
    )
    parser.add_argument("--messages", type=int, default=None, help="requests per kind (2000)")
    parser.add_argument("--emails", type=int, default=None, help="e-mails for IMAP (1000)")
    parser.add_argument("--concurrency", type=int, default=32, help="connections of the load")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 300 requests, 200 mails")
    parser.add_argument(
        "--client",
        choices=sorted(CLIENTS),
        default="aiohttp",
        help="HTTP client of the load process",
    )
    parser.add_argument("--skip-imap", action="store_true", help="only the HTTP kinds")
    parser.add_argument(
        "--poll-interval", type=float, default=1.0, help="THREADLINE_CHANNEL_POLL_INTERVAL"
    )
    parser.add_argument("--seed", type=int, default=20240601, help="workload random seed")
    parser.add_argument(
        "--deadline", type=float, default=600.0, help="seconds after which the run gives up"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work folder (server log)")
    args = parser.parse_args(argv)
    args.messages = args.messages or (300 if args.quick else 2000)
    args.emails = args.emails or (200 if args.quick else 1000)
    if args.messages < 1 or args.emails < 1 or args.concurrency < 1 or args.deadline <= 0:
        parser.error("--messages, --emails, --concurrency and --deadline must be positive")
    return args


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # run the `finally` blocks: server, Dovecot, temp folders


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))  # tests/channels/dovecot.py, as the tests import it
    started = time.monotonic()
    deadline = started + args.deadline
    load_before = os.getloadavg()
    workdir = Path(tempfile.mkdtemp(prefix="threadline-bench-channels-", dir="/tmp"))
    server = Server(workdir, args.poll_interval)
    load: LoadProcess | None = None
    outcome = Outcome()
    failed = False
    try:
        log(f"starting threadline serve on {server.base_url} (work folder {workdir})")
        server.start(deadline)
        configure(server, forms_needed(args.messages))
        load = LoadProcess(server, args.client)
        baseline = bench_webhooks(args, server, load, outcome, deadline)
        if not args.skip_imap:
            bench_imap(args, server, load, outcome, deadline, baseline)
        if server.process is not None and server.process.poll() is not None:
            outcome.problems.append(f"the server exited with {server.process.returncode}")
    except Exception as error:
        failed = True
        log("the benchmark failed")
        traceback.print_exc(file=sys.stderr)
        log(f"server log tail:\n{server.tail()}")
        emit(figure="errors", value=1, error=repr(error))
    finally:
        for step in (load.close if load else None, server.stop):
            if step is not None:
                with contextlib.suppress(Exception):
                    step()
        if args.keep:
            log(f"work folder kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if outcome.problems:
        failed = True
        for problem in outcome.problems:
            log(problem)
        emit(figure="errors", value=len(outcome.problems), problems=outcome.problems[:10])
    emit(
        figure="host",
        cpus=os.cpu_count(),
        loadavg_before=[round(x, 2) for x in load_before],
        loadavg_after=[round(x, 2) for x in os.getloadavg()],
        wall_seconds=round(time.monotonic() - started, 1),
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
