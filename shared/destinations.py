"""Where webhook sinks may send: the operator's allow-list of destinations.

A webhook URL comes from whoever configures a project's sinks; without a check it would let
them make the notifier POST to anything it can reach (a metadata service, an admin port on
localhost, a database on the private network). So a URL must be ``http`` or ``https``, and
every address its host resolves to must be allowed by ``notify_destinations``:

- ``public``: addresses on the public internet (``ipaddress``'s ``is_global``);
- a host name (``hooks.example.com``, or ``*.example.com`` for its subdomains): that name,
  whatever it resolves to (the operator vouches for it);
- an address or network (``127.0.0.1``, ``10.0.0.0/8``, ``::1``).

The check runs when sinks are set and again before each delivery, which then connects to
the address it checked (so a name that resolves elsewhere a second later is not followed).
"""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["Destination", "DestinationRefused", "Destinations"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class DestinationRefused(ValueError):
    """A URL the notifier will not send to; the message says why and names the setting."""


@dataclass(frozen=True, slots=True)
class Destination:
    """A checked URL: where to connect (``address``), and what to say (``host``, ``path``)."""

    scheme: str
    host: str
    port: int
    path: str
    address: str


class Destinations:
    """The allow-list of ``notify_destinations``."""

    def __init__(self, spec: str) -> None:
        self.public = False
        self.names: list[str] = []
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in (e.strip().lower() for e in spec.split(",")):
            if not entry:
                continue
            if entry == "public":
                self.public = True
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.names.append(entry)

    def _address_allowed(self, address: Address) -> bool:
        if any(address in network for network in self.networks):
            return True
        return self.public and address.is_global

    def _name_allowed(self, host: str) -> bool:
        return any(fnmatch.fnmatchcase(host, name) for name in self.names)

    @staticmethod
    def parse(url: str) -> tuple[str, str, int, str]:
        """``(scheme, host, port, path)`` of an ``http``/``https`` URL.

        Raises:
            DestinationRefused: another scheme, no host, or a malformed URL.
        """
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise DestinationRefused(f"not a URL: {exc}") from None
        if parts.scheme not in ("http", "https"):
            raise DestinationRefused("a webhook URL must be http:// or https://")
        if not parts.hostname or parts.username or parts.password:
            raise DestinationRefused("a webhook URL needs a host, and no user or password")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80), path

    async def check(self, url: str, timeout: float = 5.0) -> Destination:
        """Resolve ``url``'s host and check every address it gives.

        Raises:
            DestinationRefused: a scheme other than http/https, a host that does not
                resolve, or an address outside the allow-list.
        """
        scheme, host, port, path = self.parse(url)
        try:
            addresses: list[Address] = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                infos = await asyncio.wait_for(
                    asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM),
                    timeout,
                )
            except (OSError, TimeoutError):
                raise DestinationRefused(f"host {host!r} does not resolve") from None
            addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
        if not addresses:
            raise DestinationRefused(f"host {host!r} does not resolve")
        if not self._name_allowed(host):
            refused = [a for a in addresses if not self._address_allowed(a)]
            if refused:
                raise DestinationRefused(
                    f"{host} ({refused[0]}) is not an allowed destination;"
                    " the operator may add it to RELAYCAST_NOTIFY_DESTINATIONS"
                )
        return Destination(scheme, host, port, path, str(addresses[0]))
