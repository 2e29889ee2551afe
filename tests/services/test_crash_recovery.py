"""Acceptance: `kill -9` of the server mid-ingest loses no acknowledged message and doubles none.

The promise behind `POST /api/inbound` is that a 2xx answer means the message
is durable, and that a provider retrying after a crash cannot create a second
copy. This test holds the real server to it: eight clients post 1,000 distinct
messages, the server is SIGKILLed after about 300 acknowledgements (requests
still in flight), and a new server on the same database must then show every
acknowledged message exactly once, in the log and in every view. Messages that
were in flight may or may not have been committed, but never twice; posting
everything that was not acknowledged afterwards must converge on exactly 1,000.
Runs on SQLite and on PostgreSQL (the `database_url` fixture).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from eventsourcing.utils import get_topic
from server_process import ServerProcess, server_pool

from threadline.domain.commands.application import Threadline
from threadline.domain.model.message import MESSAGE_NAMESPACE, Message
from threadline.domain.model.pseudonyms import Pseudonyms
from threadline.services.store import library_env

TOTAL = 1000
KILL_AFTER = 300
THREADS = 8
REGULAR_SENDERS = 60
CLIENT_TIMEOUT = 10.0
PHASE_TIMEOUT = 60.0
RECEIVED_TOPIC = get_topic(Message.MessageReceived)

# Each backend is its own test item, so this bounds every backend's run (they take 15-30 s).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]


# -- the messages -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Outbound:
    """One message a provider delivers, and the id the store must give it."""

    index: int
    external_id: str
    sender: str
    thread: str
    payload: dict[str, Any]
    message_id: str


PSEUDONYM_KEY = bytes(range(32))
PSEUDONYMS = Pseudonyms.keyed(PSEUDONYM_KEY)


def build_messages(count: int = TOTAL) -> list[Outbound]:
    """Half from senders seen once (new contacts), half from 60 regulars over three threads.

    Regulars post concurrently into the same contacts and conversations, which
    is where a batch or a retry could record something twice.
    """
    messages = []
    for i in range(count):
        if i % 2 == 0:
            sender, thread = f"new{i:04d}", "default"
        else:
            j = i // 2
            sender, thread = (
                f"regular{j % REGULAR_SENDERS:02d}",
                f"topic-{j // REGULAR_SENDERS % 3}",
            )
        external_id = f"crash-{i:04d}"
        payload: dict[str, Any] = {
            "channel": "api",
            "external_id": external_id,
            "from": {"name": f"Client {sender}", "email": f"{sender}@example.com"},
            "subject": f"Order question {i % 7}",
            "text": f"Message {i} from {sender}: where is my order?",
        }
        if thread != "default":
            payload["thread"] = thread
        messages.append(
            Outbound(
                index=i,
                external_id=external_id,
                sender=sender,
                thread=thread,
                payload=payload,
                message_id=str(PSEUDONYMS.uuid(MESSAGE_NAMESPACE, f"api:{external_id}")),
            )
        )
    return messages


# -- posting them -----------------------------------------------------------------------------


@dataclass
class Outcome:
    """What the client saw: an acknowledgement (2xx), an HTTP refusal, or no answer at all."""

    acked: bool
    status_code: int | None = None
    body: dict[str, Any] = field(default_factory=dict)
    error: str = ""


class Barrage:
    """`threads` clients posting `messages` concurrently until done or told to stop.

    The main thread watches `acked` to pull the plug at the right moment;
    connection errors are expected after that and count as "not acknowledged".
    """

    def __init__(
        self, base_url: str, token: str, messages: Sequence[Outbound], threads: int = THREADS
    ) -> None:
        self.base_url = base_url
        self.token = token
        self.messages = list(messages)
        self.outcomes: dict[int, Outcome] = {}
        self.acked = 0
        self._next = itertools.count()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, name=f"poster-{n}", daemon=True)
            for n in range(threads)
        ]

    def start(self) -> Barrage:
        for thread in self._threads:
            thread.start()
        return self

    def stop_sending(self) -> None:
        self._stop.set()

    @property
    def finished(self) -> bool:
        return not any(thread.is_alive() for thread in self._threads)

    def join(self, timeout: float = PHASE_TIMEOUT) -> dict[int, Outcome]:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if not self.finished:
            pytest.fail(f"posting threads still busy after {timeout:.0f}s")
        return self.outcomes

    def _work(self) -> None:
        with httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=CLIENT_TIMEOUT,
        ) as client:
            while not self._stop.is_set():
                with self._lock:
                    position = next(self._next)
                if position >= len(self.messages):
                    return
                message = self.messages[position]
                outcome = self._post(client, message)
                with self._lock:
                    self.outcomes[message.index] = outcome
                    self.acked += outcome.acked
                if outcome.error:
                    return  # the server is gone: like a provider, this client retries later

    @staticmethod
    def _post(client: httpx.Client, message: Outbound) -> Outcome:
        try:
            response = client.post("/api/inbound", json=message.payload)
        except httpx.TransportError as error:
            return Outcome(acked=False, error=f"{type(error).__name__}: {error}")
        try:
            body = response.json()
        except ValueError:
            body = {"raw": response.text}
        return Outcome(
            acked=200 <= response.status_code < 300, status_code=response.status_code, body=body
        )


def post_all(server: ServerProcess, messages: Sequence[Outbound]) -> dict[int, Outcome]:
    """Post every message to a healthy server and wait for all the answers."""
    return Barrage(server.base_url, server.admin_token, messages).start().join()


# -- reading back -----------------------------------------------------------------------------


def received_in_log(database_url: str) -> Counter[str]:
    """How many `MessageReceived` events the log holds per message id, read from the store itself.

    Reading the store directly rather than through the API makes "in the log
    exactly once" a statement about the log, not about a view of it.
    """
    # CREATE_TABLE=no: the tables exist, and the running server may be running its own DDL
    # (CREATE OR REPLACE FUNCTION), which PostgreSQL refuses to do twice at the same moment
    # ("tuple concurrently updated").
    app = Threadline(env={**library_env(database_url), "CREATE_TABLE": "no"})
    counts: Counter[str] = Counter()
    try:
        start = 1
        while True:
            page = app.recorder.select_notifications(
                start=start, limit=1000, topics=[RECEIVED_TOPIC]
            )
            if not page:
                return counts
            counts.update(str(n.originator_id) for n in page)
            start = page[-1].id + 1
    finally:
        app.close()


@dataclass
class ViewsReport:
    """Inbound messages as the views show them, counted per message id."""

    in_conversations: Counter[str]
    in_timelines: Counter[str]
    conversations: int
    contacts: int
    message_count_sum: int
    count_mismatches: list[str]


def list_all(client: httpx.Client, path: str) -> list[dict[str, Any]]:
    """Every row of a paged list endpoint (`limit`/`offset`/`total`)."""
    items: list[dict[str, Any]] = []
    total = None
    while total is None or len(items) < total:
        response = client.get(path, params={"limit": 500, "offset": len(items)})
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
        page = response.json()
        total = page["total"]
        if not page["items"]:
            break
        items.extend(page["items"])
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids)) == total, f"{path}: {len(set(ids))} distinct of {total}"
    return items


def read_views(server: ServerProcess) -> ViewsReport:
    """Walk the inbox (every conversation's messages) and every contact's timeline."""
    with server.client(timeout=30.0) as client:

        def get(path: str, **params: Any) -> dict[str, Any]:
            response = client.get(path, params=params)
            assert response.status_code == 200, f"GET {path}: {response.text}"
            body: dict[str, Any] = response.json()
            return body

        conversations = list_all(client, "/api/inbox")
        contacts = list_all(client, "/api/contacts")
        with ThreadPoolExecutor(THREADS) as pool:
            details = list(pool.map(lambda c: get(f"/api/conversations/{c['id']}"), conversations))
            timelines = list(
                pool.map(
                    lambda c: get(f"/api/contacts/{c['id']}/timeline", limit=1000)["items"],
                    contacts,
                )
            )
    in_conversations: Counter[str] = Counter()
    mismatches = []
    for detail in details:
        inbound = [m["id"] for m in detail["messages"] if m["direction"] == "inbound"]
        in_conversations.update(inbound)
        if detail["message_count"] != len(detail["messages"]):
            mismatches.append(
                f"{detail['id']}: message_count {detail['message_count']}"
                f" but {len(detail['messages'])} messages"
            )
    in_timelines: Counter[str] = Counter()
    for rows in timelines:
        assert len(rows) < 1000, "a timeline filled its page; the test would miss rows"
        in_timelines.update(row["ref_id"] for row in rows if row["kind"] == "message.received")
    return ViewsReport(
        in_conversations=in_conversations,
        in_timelines=in_timelines,
        conversations=len(conversations),
        contacts=len(contacts),
        message_count_sum=sum(d["message_count"] for d in details),
        count_mismatches=mismatches,
    )


def twice(counts: Counter[str]) -> dict[str, int]:
    """The ids seen other than exactly once (the test's whole point, so name them all)."""
    return {key: n for key, n in counts.items() if n != 1}


def sample(ids: set[str], n: int = 5) -> list[str]:
    """A few ids for a failure message; hundreds of UUIDs would bury the cause."""
    return sorted(ids)[:n]


def assert_views_match_log(views: ViewsReport, log: Counter[str], context: str) -> None:
    """Each view holds exactly the log's messages, each exactly once."""
    for name, counts in (("inbox", views.in_conversations), ("timeline", views.in_timelines)):
        assert not twice(counts), f"{context}: {name} shows messages twice: {twice(counts)}"
        missing, extra = set(log) - set(counts), set(counts) - set(log)
        assert not missing, f"{context}: {name} misses {len(missing)} logged: {sample(missing)}"
        assert not extra, f"{context}: {name} shows {len(extra)} not in the log: {sample(extra)}"
    assert not views.count_mismatches, f"{context}: {views.count_mismatches[:5]}"
    assert views.message_count_sum == len(log), context


# -- the test ---------------------------------------------------------------------------------


@pytest.fixture
def servers(database_url: str, tmp_path: Path) -> Iterator[Callable[[], ServerProcess]]:
    """Servers on this backend's database, stopped before the fixture drops a PG schema."""
    # The servers key their ids with this key, so the test can say which id each message gets.
    key = {"THREADLINE_PSEUDONYM_KEY": PSEUDONYM_KEY.hex()}
    with server_pool(database_url, tmp_path / "servers", key) as start:
        yield start


def test_kill_9_during_ingest_loses_and_duplicates_nothing(
    database_url: str, servers: Callable[[], ServerProcess]
) -> None:
    began = time.monotonic()
    phases: dict[str, float] = {}

    def phase_done(name: str) -> None:
        """Record how long each phase took, so a slow backend shows where the time goes."""
        phases[name] = time.monotonic() - began - sum(phases.values())

    messages = build_messages()
    by_index = {m.index: m for m in messages}
    all_ids = {m.message_id for m in messages}

    # 1. Post from eight clients; SIGKILL the server once ~300 are acknowledged.
    first = servers()
    barrage = Barrage(first.base_url, first.admin_token, messages).start()
    deadline = time.monotonic() + PHASE_TIMEOUT
    while barrage.acked < KILL_AFTER:
        if barrage.finished or time.monotonic() > deadline:
            pytest.fail(
                f"only {barrage.acked} acknowledged before the posting stopped\n{first.log_tail()}"
            )
        time.sleep(0.002)
    first.kill9()
    barrage.stop_sending()
    outcomes = barrage.join()

    refused = {i: o for i, o in outcomes.items() if not o.acked and o.status_code is not None}
    assert not refused, f"HTTP refusals before the kill: {list(refused.items())[:5]}"
    acked = {i: o for i, o in outcomes.items() if o.acked}
    unacked = {i for i, o in outcomes.items() if not o.acked}
    never_sent = set(by_index) - set(outcomes)
    assert len(acked) >= KILL_AFTER
    for i, outcome in acked.items():
        assert outcome.status_code == 201 and outcome.body["duplicate"] is False, outcome
        assert outcome.body["message_id"] == by_index[i].message_id, outcome
    acked_ids = {by_index[i].message_id for i in acked}
    sent_ids = {by_index[i].message_id for i in outcomes}
    phase_done("kill")

    # 2. Restart on the same database; the views catch up before it serves.
    second = servers()
    second.wait_health(
        lambda h: h["status"] == "ok" and h["views_lag"] == 0, what="catch its views up"
    )
    phase_done("restart")

    # 3. The log holds every acknowledged message once, and nothing never sent.
    log = received_in_log(database_url)
    assert not twice(log), f"messages logged twice: {twice(log)}"
    lost = acked_ids - set(log)
    assert not lost, f"{len(lost)} acknowledged messages are not in the log: {sample(lost)}"
    phantom = set(log) - sent_ids
    assert not phantom, f"never-sent messages in the log: {sample(phantom)}"
    phase_done("log")

    # 4. A provider's retry of an acknowledged message is a duplicate of the same message.
    retried = post_all(second, [by_index[i] for i in sorted(acked)])
    for i, outcome in retried.items():
        assert outcome.status_code == 200, (i, outcome)
        assert outcome.body["duplicate"] is True, (i, outcome)
        for key in ("message_id", "contact_id", "conversation_id"):
            assert outcome.body[key] == acked[i].body[key], (i, key, outcome, acked[i])
    phase_done("retry")

    # 5. The views show exactly what the log holds, each message once.
    assert_views_match_log(read_views(second), log, "after the restart")
    phase_done("views")

    # 6. Deliver everything not acknowledged (retries and never-sent) and converge on 1,000.
    committed_unanswered = {i for i in unacked if by_index[i].message_id in log}
    rest = sorted(unacked | never_sent)
    delivered = post_all(second, [by_index[i] for i in rest])
    assert set(delivered) == set(rest)
    for i, outcome in delivered.items():
        message = by_index[i]
        was_logged = i in committed_unanswered
        assert outcome.status_code == (200 if was_logged else 201), (i, was_logged, outcome)
        assert outcome.body["duplicate"] is was_logged, (i, outcome)
        assert outcome.body["message_id"] == message.message_id, (i, outcome)

    second.wait_health(lambda h: h["views_lag"] == 0, what="catch its views up")
    final_log = received_in_log(database_url)
    assert set(final_log) == all_ids and not twice(final_log), (
        f"{len(final_log)} logged, twice: {twice(final_log)}, missing: {sample(all_ids - set(final_log))}"
    )
    views = read_views(second)
    assert_views_match_log(views, final_log, "after delivering the rest")
    assert views.contacts == len({m.sender for m in messages})
    assert views.conversations == len({(m.sender, m.thread) for m in messages})
    phase_done("rest")
    elapsed = time.monotonic() - began
    print(
        f"\n{database_url.split(':')[0]}: {len(acked)} acknowledged, {len(unacked)} unanswered"
        f" ({len(committed_unanswered)} of them committed), {len(never_sent)} never sent;"
        f" {elapsed:.1f}s"
        f" ({', '.join(f'{name} {seconds:.1f}s' for name, seconds in phases.items())})"
    )
