"""Real mail servers for the e-mail tests: Dovecot (IMAP) and aiosmtpd (SMTP), on loopback.

* `dovecot` (session): the Debian Dovecot binary with its own configuration in a
  temporary folder, IMAP on a free 127.0.0.1 port without TLS, plus (when the
  `openssl` command exists) IMAPS and STARTTLS with a self-signed certificate.
  Each test adds its own user (`dovecot.add_user()`), so tests never share a mailbox.
* `smtp_to_imap` (session): a tiny MTA. Every message sent to `<user>@example.com`
  by SMTP is APPENDed to that Dovecot user's INBOX, so a test can do what a client
  does: send mail by SMTP to a mailbox the poller watches.
* `smtp_capture` (per test): an SMTP server that records every envelope, refuses
  recipients whose local part starts with `reject` (550) or `later` (451), and
  accepts AUTH PLAIN/LOGIN with `smtp_capture.username`/`password`, without TLS.
* `tls_cert`: the self-signed certificate (for 127.0.0.1) and its key (None without
  openssl); `trusted_tls` also points `SSL_CERT_FILE` at it for the test, so the
  clients' default SSL context trusts it. `capture_server("starttls"|"tls", cert)`
  runs a capturing SMTP server behind STARTTLS or implicit TLS.

Dovecot refuses to run its login process as root, so the configuration runs it as
`dovenull`, mail access as `dovecot` (a static userdb), and keeps its folders in a
fresh `/tmp/threadline-dovecot-*` folder those users can reach (see `private_root`),
removed at teardown. It is started in the foreground (`dovecot -F`) with
stdout and stderr going to a file (it keeps them open), and stopped at teardown.
Without Dovecot the tests skip, unless THREADLINE_REQUIRE_SERVICES=1 (CI): then
they fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import itertools
import os
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from threadline.channels.email import imap_utf7

DOVECOT = "/usr/sbin/dovecot"
DOMAIN = "example.com"
START_SECONDS = 15.0
REQUIRE_SERVICES = os.environ.get("THREADLINE_REQUIRE_SERVICES") == "1"
_user_numbers = itertools.count(1)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, seconds: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing answers on 127.0.0.1:{port} after {seconds:.0f} s")


def dovecot_missing() -> str | None:
    """None when Dovecot can run here, else why not."""
    if not Path(DOVECOT).exists():
        return f"{DOVECOT} is not installed (Debian package dovecot-imapd)"
    for user in ("dovecot", "dovenull"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            return f"the system user {user} is missing"
    return None


def need_dovecot() -> None:
    reason = dovecot_missing()
    if reason is None:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"Dovecot is required (THREADLINE_REQUIRE_SERVICES=1): {reason}")
    pytest.skip(f"Dovecot not available: {reason}")


def private_root(prefix: str = "threadline-dovecot-") -> Path:
    """A folder the dovecot users can reach, outside pytest's base folder.

    pytest keeps `/tmp/pytest-of-<user>` at mode 0700 and resets it whenever any
    pytest session starts (other sessions run beside ours), so Dovecot's mail and
    runtime folders cannot live under `tmp_path`: the imap process, running as the
    `dovecot` user, must walk down to them. `/tmp` itself is world-traversable.
    """
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o711)
    return root


# -- TLS ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TlsCert:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, self.key)
        return context


def make_cert(folder: Path) -> TlsCert | None:
    """A self-signed certificate for 127.0.0.1 and localhost, or None without openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    cert.chmod(0o644)
    key.chmod(0o644)
    return TlsCert(cert, key)


# -- Dovecot --------------------------------------------------------------------------------

_CONFIG = """\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
{ssl}
disable_plaintext_auth = no
auth_mechanisms = plain login
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = 1
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users/%u
}}
userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {ssl_port}
  }}
}}
"""


@dataclass
class Dovecot:
    """A running Dovecot; users are added on the fly.

    Each user has a passwd-file of its own (`users/<name>`): Dovecot notices a changed
    passwd file by its mtime (whole seconds) and size, so one shared file rewritten
    twice within a second could hide a new user.
    """

    root: Path
    port: int
    ssl_port: int | None
    cert: TlsCert | None
    process: subprocess.Popen[bytes] | None = None
    users: dict[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        for sub in ("run", "state", "mail"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        ids = pwd.getpwnam("dovecot")
        os.chown(self.root / "mail", ids.pw_uid, ids.pw_gid)
        (self.root / "users").mkdir(exist_ok=True)
        tls = "ssl = no"
        if self.cert is not None:
            tls = f"ssl = yes\nssl_cert = <{self.cert.cert}\nssl_key = <{self.cert.key}"
        (self.root / "dovecot.conf").write_text(
            _CONFIG.format(root=self.root, port=self.port, ssl_port=self.ssl_port or 0, ssl=tls)
        )
        output = (self.root / "stdout.log").open("wb")
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.root / "dovecot.conf")],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        output.close()
        try:
            wait_for_port(self.port, START_SECONDS, self.process)
            if self.ssl_port:
                wait_for_port(self.ssl_port, START_SECONDS, self.process)
        except Exception as error:
            self.stop()
            raise RuntimeError(f"Dovecot did not start ({error}):\n{self.logs()}") from None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def logs(self) -> str:
        parts = []
        for name in ("stdout.log", "dovecot.log"):
            path = self.root / name
            if path.exists():
                parts.append(path.read_text(errors="replace")[-4000:])
        return "\n".join(parts)

    def _write_passwd(self, user: str) -> None:
        folder = self.root / "users"
        folder.mkdir(exist_ok=True)
        temporary = folder / f".{user}.new"
        temporary.write_text(f"{user}:{{PLAIN}}{self.users[user]}::::::\n")
        temporary.chmod(0o644)
        temporary.replace(folder / user)

    def add_user(self, prefix: str = "box") -> str:
        """A new mailbox user (also its address's local part); its password is `password(user)`."""
        with self._lock:
            user = f"{prefix}{next(_user_numbers)}x{os.getpid()}"
            self.users[user] = f"pw-{user}"
            self._write_passwd(user)
        return user

    def password(self, user: str) -> str:
        return self.users[user]

    def address(self, user: str) -> str:
        return f"{user}@{DOMAIN}"

    @contextlib.contextmanager
    def imap(self, user: str) -> Iterator[imaplib.IMAP4]:
        client = imaplib.IMAP4(self.host, self.port, timeout=10)
        try:
            client.login(user, self.users[user])
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def append(self, user: str, raw: bytes, folder: str = "INBOX") -> None:
        with self.imap(user) as client:
            status, detail = client.append(_quote(folder), None, None, raw)
            assert status == "OK", detail

    def create_folder(self, user: str, folder: str) -> None:
        with self.imap(user) as client:
            status, detail = client.create(_quote(folder))
            assert status == "OK", detail

    def delete_folder(self, user: str, folder: str) -> None:
        with self.imap(user) as client:
            status, detail = client.delete(_quote(folder))
            assert status == "OK", detail

    def kick(self, user: str) -> None:
        """Drop every IMAP connection of `user`, as a server restart or a network cut would."""
        subprocess.run(
            ["doveadm", "-c", str(self.root / "dovecot.conf"), "kick", user],
            check=True,
            capture_output=True,
            timeout=10,
        )

    def count(self, user: str, folder: str = "INBOX") -> int:
        with self.imap(user) as client:
            status, data = client.select(_quote(folder), readonly=True)
            assert status == "OK", data
            return int(data[0] or 0)

    def settings(self, user: str, **overrides: Any) -> dict[str, Any]:
        """Inbox settings reading this user's mailbox over plain IMAP (sending is off)."""
        settings: dict[str, Any] = {
            "imap_host": self.host,
            "imap_port": self.port,
            "imap_security": "none",
            "imap_username": user,
            "imap_password": self.users[user],
            "imap_folders": ["INBOX"],
            "from_address": self.address(user),
            "from_name": "Support",
        }
        settings.update(overrides)
        return settings


def _quote(folder: str) -> str:
    """A folder name as an IMAP quoted string, non-ASCII in modified UTF-7."""
    name = imap_utf7(folder)
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- SMTP -----------------------------------------------------------------------------------


class _Deliver:
    """The MTA's handler: RCPT must name a Dovecot user; DATA is APPENDed to its INBOX."""

    def __init__(self, dovecot: Dovecot) -> None:
        self.dovecot = dovecot

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        user = address.rsplit("@", 1)[0]
        if user not in self.dovecot.users:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        for address in envelope.rcpt_tos:
            await asyncio.to_thread(self.dovecot.append, address.rsplit("@", 1)[0], content)
        return "250 2.0.0 delivered"


@dataclass
class SmtpMta:
    """SMTP in front of Dovecot: `send(raw, to_user)` delivers like a real mail server would."""

    host: str
    port: int
    dovecot: Dovecot

    def send(self, raw: bytes, to_user: str, sender: str = f"client@{DOMAIN}") -> None:
        import smtplib

        with smtplib.SMTP(self.host, self.port, timeout=10) as client:
            client.sendmail(sender, [self.dovecot.address(to_user)], raw)


@dataclass
class Captured:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    login: str | None


class _Capture:
    def __init__(self, owner: SmtpCapture) -> None:
        self.owner = owner

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        local = address.rsplit("@", 1)[0].lower()
        if local.startswith("reject"):
            return f"550 5.1.1 <{address}>: recipient address rejected: user unknown"
        if local.startswith("later"):
            return "451 4.3.0 mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        login = session.auth_data.login.decode() if session.auth_data else None
        with self.owner.lock:
            self.owner.messages.append(
                Captured(
                    str(envelope.mail_from),
                    list(envelope.rcpt_tos),
                    envelope.original_content or b"",
                    login,
                )
            )
        return "250 2.0.0 queued"


@dataclass
class SmtpCapture:
    """An SMTP server that keeps what it receives; see the module docstring for its rules."""

    host: str = "127.0.0.1"
    port: int = 0
    username: str = "sender"
    password: str = "smtp-secret"
    messages: list[Captured] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == self.username
            and data.password.decode() == self.password
        )
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

    def settings(self, **overrides: Any) -> dict[str, Any]:
        settings: dict[str, Any] = {
            "smtp_host": self.host,
            "smtp_port": self.port,
            "smtp_security": "none",
            "smtp_username": self.username,
            "smtp_password": self.password,
            "from_address": f"support@{DOMAIN}",
            "from_name": "Threadline Support",
        }
        settings.update(overrides)
        return settings

    def wait_for(self, count: int, seconds: float = 60.0) -> list[Captured]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.05)
        raise AssertionError(f"expected {count} messages, got {len(self.messages)}")


def _controller(handler: Any, port: int, **smtp_options: Any) -> Controller:
    return Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=10, **smtp_options)


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> TlsCert | None:
    return make_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def trusted_tls(tls_cert: TlsCert | None, monkeypatch: pytest.MonkeyPatch) -> TlsCert:
    """The test certificate, trusted by `ssl.create_default_context()` via SSL_CERT_FILE."""
    if tls_cert is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_cert.cert))
    return tls_cert


@pytest.fixture(scope="session")
def dovecot(tls_cert: TlsCert | None) -> Iterator[Dovecot]:
    need_dovecot()
    server = Dovecot(
        root=private_root(),
        port=free_port(),
        ssl_port=free_port() if tls_cert is not None else None,
        cert=tls_cert,
    )
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(scope="session")
def smtp_to_imap(dovecot: Dovecot) -> Iterator[SmtpMta]:
    port = free_port()
    controller = _controller(_Deliver(dovecot), port)
    controller.start()
    try:
        yield SmtpMta("127.0.0.1", port, dovecot)
    finally:
        controller.stop()


@contextlib.contextmanager
def capture_server(mode: str = "none", cert: TlsCert | None = None) -> Iterator[SmtpCapture]:
    """A capturing SMTP server; `mode` "starttls" requires STARTTLS, "tls" is implicit TLS."""
    capture = SmtpCapture(port=free_port())
    options: dict[str, Any] = {
        "authenticator": capture.authenticate,
        # aiosmtpd cannot tell an implicit-TLS socket from a plain one: only STARTTLS counts.
        "auth_require_tls": mode == "starttls",
    }
    if mode != "none":
        assert cert is not None, "TLS needs a certificate"
        if mode == "starttls":
            options.update(tls_context=cert.server_context(), require_starttls=True)
        else:
            options.update(ssl_context=cert.server_context())
    controller = _controller(_Capture(capture), capture.port, **options)
    controller.start()
    try:
        yield capture
    finally:
        controller.stop()


@pytest.fixture
def smtp_capture() -> Iterator[SmtpCapture]:
    with capture_server() as capture:
        yield capture
