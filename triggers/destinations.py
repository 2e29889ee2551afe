"""Where a rule's webhook may go: the public internet, and internal addresses only when allowed.

A rule is written by a manager, but the call is made by the server, from inside
the network: without a check, ``webhook: {url: http://169.254.169.254/...}``
reads the cloud metadata service and ``http://127.0.0.1:5432`` probes the
database. So every destination is checked twice:

* **at save**, when the host is an address literal (``127.0.0.1``, ``[::1]``,
  ``2130706433``) or ``localhost``: the rule is refused with a clear message;
* **at send**, on the address the host *resolves to*, once; the call then goes
  to that very address (DNS rebinding cannot swap it between check and connect).

Refused: loopback, private (10/8, 172.16/12, 192.168/16, fc00::/7), link-local
(169.254/16 with the metadata service, fe80::/10), unspecified (0.0.0.0, ::),
multicast, reserved and every other range that is not globally routable
(Python's ``is_global``), and IPv4 addresses wrapped in IPv6. The operator
permits internal targets with ``THREADLINE_WEBHOOK_ALLOW``: CIDRs or addresses
(``10.0.0.0/8``, ``127.0.0.1``) and host names (``erp.internal``), comma
separated.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOW_SETTING = "THREADLINE_WEBHOOK_ALLOW"


class DestinationRefused(ValueError):
    """A webhook destination that is internal and not on the allow-list."""


def _literal(host: str) -> IPAddress | None:
    """The address a host literal stands for (also the short forms ``127.1``, ``2130706433``)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(ch in "0123456789abcdefxABCDEFX." for ch in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def is_internal(address: IPAddress) -> bool:
    """True for every address a webhook must not reach without the allow-list."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return is_internal(address.ipv4_mapped)
    return address.is_multicast or not address.is_global


@dataclass(frozen=True)
class DestinationPolicy:
    """The allow-list: networks and host names that may be called although internal."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, entries: Iterable[str] | str) -> DestinationPolicy:
        """From the setting's entries (a comma-separated string or a list); ValueError if bad."""
        items = entries.split(",") if isinstance(entries, str) else list(entries)
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for raw in items:
            entry = raw.strip().lower().rstrip(".")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            if "/" in entry or ":" in entry or " " in entry:
                raise ValueError(f"{ALLOW_SETTING}: {raw.strip()!r} is not a CIDR, address or host")
            hosts.add(entry)
        return cls(tuple(networks), frozenset(hosts))

    def allows(self, host: str, address: IPAddress) -> bool:
        if not is_internal(address):
            return True
        if _host_name(host) in self.hosts:
            return True
        return any(address.version == net.version and address in net for net in self.networks)

    def check_at_save(self, url: str) -> None:
        """Refuse a URL whose host is visibly internal: an address literal or ``localhost``."""
        try:
            host = _host_name(urlsplit(url).hostname or "")
        except ValueError as error:  # e.g. an unclosed [IPv6 bracket
            raise DestinationRefused(f"not a URL: {error}") from None
        if host in self.hosts:
            return
        if host == "localhost" or host.endswith(".localhost"):
            raise DestinationRefused(
                f"{host} is this server; allow it with {ALLOW_SETTING} if that is meant"
            )
        address = _literal(host)
        if address is not None and not self.allows(host, address):
            raise DestinationRefused(
                f"{address} is an internal address (loopback, private, link-local or similar);"
                f" allow it with {ALLOW_SETTING} if that is meant"
            )

    def resolve(self, host: str, port: int) -> IPAddress:
        """The one address to connect to: every address the host has must be allowed.

        Raises `DestinationRefused` (permanent) or `OSError` (the name did not resolve:
        transient, like any connection failure).
        """
        name = _host_name(host)
        literal = _literal(name)
        if literal is not None:
            found = [literal]
        else:
            infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
            found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
        if not found:
            raise OSError(f"{name} has no address")
        for address in found:
            if not self.allows(name, address):
                raise DestinationRefused(
                    f"{name} resolves to {address}, an internal address; allow it with "
                    f"{ALLOW_SETTING} if that is meant"
                )
        return found[0]


def _host_name(host: str) -> str:
    return host.strip().strip("[]").lower().rstrip(".")
