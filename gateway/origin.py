"""The Origin allow-list: which web pages may open connections to this gateway.

A browser sends ``Origin`` with every WebSocket upgrade and every cross-origin request,
and Starlette's CORS middleware does not cover WebSockets, so the transports ask
:meth:`OriginPolicy.allows` before they accept anything; a refused origin gets 403.

Requests without ``Origin`` come from programs, not pages, and pass: the check keeps
other sites' pages from using a visitor's browser as a client, it is not authentication.
Entries of ``allowed_origins`` are exact origins (``https://app.example.com``, with the
port when it is not the scheme's default), subdomain wildcards (``https://*.example.com``)
or ``*``. Empty means the gateway's own origin in production, and any origin in
development.

The gateway's own origin is not "whatever ``Host`` says": a DNS-rebinding page
(``evil.example`` made to resolve to the gateway's address) sends ``Origin`` and ``Host``
that agree. So a page counts as the gateway's own only when ``Origin`` names the
``Host`` the request was sent to *and* that host name is one the gateway knows as its
own: a loopback name or address (``localhost``, ``127.0.0.0/8``, ``[::1]``) or the
address it binds (``RELAYCAST_HOST``, unless a wildcard). A dashboard served under a
public name needs that name in ``allowed_origins``.
"""

from __future__ import annotations

import ipaddress

from gateway import observe
from shared.settings import Settings

__all__ = ["OriginPolicy"]


class OriginPolicy:
    """Decides whether a page at some origin may connect."""

    def __init__(
        self, allowed: list[str], any_origin: bool = False, own_hosts: tuple[str, ...] = ()
    ) -> None:
        self.any = any_origin or "*" in allowed
        self.own_hosts = {h.strip().lower().strip("[]") for h in own_hosts if h.strip()}
        """Host names (besides loopback) that are this gateway's own origin."""
        self.exact = {o.rstrip("/").lower() for o in allowed if "*" not in o}
        # "https://*.example.com" -> ("https://", ".example.com")
        self.wildcards = [
            (o[: o.index("*")].lower(), o[o.index("*") + 1 :].rstrip("/").lower())
            for o in allowed
            if o != "*" and o.count("*") == 1 and "://*." in o
        ]

    @classmethod
    def from_settings(cls, settings: Settings) -> OriginPolicy:
        allowed = [o.strip() for o in settings.allowed_origins.split(",") if o.strip()]
        bound = settings.host if settings.host not in ("", "0.0.0.0", "::") else ""
        return cls(
            allowed, any_origin=not allowed and settings.mode == "development", own_hosts=(bound,)
        )

    def allows(self, origin: str | None, host: str | None) -> bool:
        """Whether a request with header ``Origin: origin``, sent to ``Host: host``, may
        connect. Counts a refusal in the metrics."""
        if origin is None or self.any:
            return True
        origin = origin.strip().lower()
        if origin in self.exact or self._wildcard(origin) or self._same_origin(origin, host):
            return True
        observe.AUTH_REFUSALS.labels("origin").inc()
        return False

    def _wildcard(self, origin: str) -> bool:
        for scheme, suffix in self.wildcards:
            if origin.startswith(scheme) and origin.endswith(suffix):
                name = origin[len(scheme) : len(origin) - len(suffix)]
                if name and "/" not in name and ":" not in name:
                    return True
        return False

    def _same_origin(self, origin: str, host: str | None) -> bool:
        if not host:
            return False
        scheme, sep, authority = origin.partition("://")
        if not sep or scheme not in ("http", "https"):
            return False  # "null" and other opaque origins are never our own
        host = host.strip().lower()
        default = ":443" if scheme == "https" else ":80"
        same = authority == host or authority + default == host or authority == host + default
        return same and self._own_host(host)

    def _own_host(self, host: str) -> bool:
        """Whether ``host`` (a ``Host`` header: name, optional port) names this gateway."""
        if host.startswith("["):
            name = host[1 : host.find("]")] if "]" in host else ""
        else:
            name = host.rpartition(":")[0] if ":" in host else host
        if name == "localhost" or name.endswith(".localhost") or name in self.own_hosts:
            return True
        try:
            return ipaddress.ip_address(name).is_loopback
        except ValueError:
            return False
