"""Why a delivery failed, as a small set of plain reasons a person can act on.

A provider's error text (`httpx.ConnectError: [Errno -2] Name or service not
known`, `Twilio 400 error 21211: ...`) is for an admin and the logs; an
operator needs to know what happened in words ("the mail server could not be
reached"). Each failure is recorded with one `DeliveryProblem` code beside the
technical reason; the web app turns the code into a sentence in the reader's
language, and shows the technical reason to admins only.

A channel may name the problem itself (`DeliveryError(..., problem=...)`, as the
Twilio adapter does from Twilio's error codes). Otherwise it is read from the
exception chain the channel raised from (`raise DeliveryError(...) from None`
still keeps the original as `__context__`), by class name, so this module needs
no provider SDK: aiosmtplib, httpx (under python-telegram-bot), requests (under
twilio) and the standard library each name their errors plainly.
"""

from __future__ import annotations

from enum import StrEnum


class DeliveryProblem(StrEnum):
    UNREACHABLE = "unreachable"  # the provider's server could not be reached (DNS, refused)
    TIMEOUT = "timeout"  # the provider did not answer in time (retried when transient)
    IN_DOUBT = "in_doubt"  # sending was cut off: the provider may have it, so not sent again
    LOGIN_REFUSED = "login_refused"  # the inbox's password, token or account was refused
    BAD_RECIPIENT = "bad_recipient"  # the address or number does not exist or is invalid
    BLOCKED = "blocked"  # the recipient blocked us or unsubscribed at the provider
    RATE_LIMITED = "rate_limited"  # too many messages too fast
    REFUSED = "refused"  # the provider refused this message (content, size, policy)
    UNDELIVERABLE = "undeliverable"  # the carrier could not reach the handset
    FILTERED = "filtered"  # the carrier filtered the message (as spam)
    NOT_SET_UP = "not_set_up"  # no inbox can send it, or the inbox lacks a setting
    NO_ADDRESS = "no_address"  # the client has no address or number for the channel
    UNKNOWN = "unknown"


# Rules by exception class name (any class of its MRO), the first that matches wins; the
# connection rules come before the timeout ones because a connect timeout is "unreachable".
_RULES: tuple[tuple[frozenset[str], DeliveryProblem], ...] = (
    (frozenset({"SMTPAuthenticationError", "InvalidToken"}), DeliveryProblem.LOGIN_REFUSED),
    (
        frozenset({"SMTPRecipientsRefused", "SMTPRecipientRefused", "ChatMigrated"}),
        DeliveryProblem.BAD_RECIPIENT,
    ),
    (frozenset({"RetryAfter"}), DeliveryProblem.RATE_LIMITED),
    (frozenset({"Forbidden"}), DeliveryProblem.BLOCKED),
    (
        frozenset(
            {
                "ConnectError",
                "ConnectTimeout",
                "SMTPConnectError",
                "SMTPConnectTimeoutError",
                "SMTPServerDisconnected",
                "ConnectionError",
                "gaierror",
            }
        ),
        DeliveryProblem.UNREACHABLE,
    ),
    (
        frozenset({"TimedOut", "TimeoutError", "TimeoutException", "SMTPTimeoutError", "Timeout"}),
        DeliveryProblem.TIMEOUT,
    ),
    (frozenset({"BadRequest", "SMTPResponseException"}), DeliveryProblem.REFUSED),
    (frozenset({"NetworkError", "OSError"}), DeliveryProblem.UNREACHABLE),
)
_MAX_CHAIN = 10


def problem_of(error: BaseException) -> DeliveryProblem:
    """The plain reason behind `error`: its own `problem` if it names one, else the first
    exception of its chain (nearest first) whose class a rule knows, else UNKNOWN."""
    named = str(getattr(error, "problem", "") or "")
    if named in DeliveryProblem._value2member_map_:
        return DeliveryProblem(named)
    for link in _chain(error):
        found = _by_class(link)
        if found is not None:
            return _refine(link, found)
    if getattr(error, "kind", "") == "blocked":
        return DeliveryProblem.BLOCKED
    return DeliveryProblem.UNKNOWN


def _chain(error: BaseException) -> list[BaseException]:
    """`error`, then what it was raised from or during, at most `_MAX_CHAIN` deep."""
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and len(seen) < _MAX_CHAIN and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _by_class(error: BaseException) -> DeliveryProblem | None:
    names = {cls.__name__ for cls in type(error).__mro__}
    for wanted, problem in _RULES:
        if names & wanted:
            return problem
    return None


def _refine(error: BaseException, problem: DeliveryProblem) -> DeliveryProblem:
    """Telegram says "chat not found" with a plain BadRequest: that is the recipient. An SMTP
    server refusing a recipient only for now (4xx: mailbox busy, greylisting) is not saying
    the address is wrong."""
    if problem is DeliveryProblem.REFUSED and "chat not found" in str(error).lower():
        return DeliveryProblem.BAD_RECIPIENT
    if problem is DeliveryProblem.BAD_RECIPIENT:
        codes = [getattr(r, "code", 0) for r in getattr(error, "recipients", ())]
        if codes and all(400 <= code < 500 for code in codes):
            return DeliveryProblem.REFUSED
    return problem
