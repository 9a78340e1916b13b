"""Channel names, and the per-namespace options that decide how a channel behaves.

A channel name is 1-128 characters of letters, digits and ``_ - . : @``. Dots separate
namespaces: ``tasks.projA.42`` lives in namespace ``tasks``. Options are chosen by the
first pattern (shell-style, ``fnmatch``) that matches the whole name.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from typing import Literal

import msgspec

__all__ = [
    "DEFAULT_NAMESPACES",
    "Access",
    "ChannelOptions",
    "InvalidChannel",
    "Namespaces",
    "check_channel",
    "is_valid_channel",
]

Channel = str
"""A validated channel name."""

Access = Literal["public", "authenticated", "claims"]
"""Who may subscribe to a channel (in production; in development, anyone):
``public`` anyone, ``authenticated`` any valid token, ``claims`` a token whose
``channels`` patterns match the channel's name."""

_NAME = re.compile(r"[A-Za-z0-9_\-.:@]{1,128}")


class InvalidChannel(ValueError):
    """A channel name breaks the naming rules."""


def is_valid_channel(name: object) -> bool:
    """True when ``name`` is a channel name the protocol accepts."""
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def check_channel(name: str) -> Channel:
    """Return ``name`` when valid.

    Raises:
        InvalidChannel: with a message a client can read.
    """
    if not is_valid_channel(name):
        raise InvalidChannel(
            f"invalid channel name {name[:140]!r}: use 1-128 of A-Z a-z 0-9 _ - . : @"
        )
    return name


class ChannelOptions(msgspec.Struct, frozen=True, kw_only=True):
    """How one channel behaves.

    Attributes:
        pattern: shell-style pattern this entry applies to.
        history_size: messages kept in Redis for resume; 0 keeps none (plain pub/sub,
            a reconnecting client is told ``recovered: false`` when it missed any).
        history_ttl: the age bound: a message older than this many seconds is dropped
            from history (and a channel quiet this long loses its history).
        latest: a latest-value channel (metrics): a new subscriber gets the newest
            message at once, and a slow client gets the newest value instead of a
            backlog. Otherwise the channel is ordered: a client too slow to keep up is
            disconnected with close code 4001 and resumes from history.
        access: who may subscribe (:data:`Access`); ``claims``, the default, needs a token
            that names the channel. Applies in production mode only.
    """

    pattern: str
    history_size: int = 1000
    history_ttl: float = 600.0
    latest: bool = False
    access: Access = "claims"

    def __post_init__(self) -> None:
        if self.history_size < 0:
            raise ValueError("history_size must be >= 0")
        if self.history_ttl <= 0:
            raise ValueError("history_ttl must be > 0")
        if self.latest and self.history_size < 1:
            raise ValueError("a latest-value channel keeps at least one message")


DEFAULT_NAMESPACES: tuple[ChannelOptions, ...] = (
    # <channel>@state: the current state of what <channel> reports on (the active alerts,
    # one task's progress); a new subscriber gets it at once.
    # notifications.<user>: one user's notifications; only a token of that user reads it.
    ChannelOptions(pattern="notifications.*", history_size=100, history_ttl=86400),
    ChannelOptions(pattern="*@state", history_size=1, history_ttl=86400, latest=True),
    ChannelOptions(pattern="metrics.*", history_size=1, history_ttl=3600, latest=True),
    ChannelOptions(pattern="alerts*", history_size=1000, history_ttl=86400),
    ChannelOptions(pattern="tasks.*", history_size=1000, history_ttl=3600),
    ChannelOptions(pattern="*", history_size=1000, history_ttl=600),
)


class Namespaces:
    """First-match lookup of :class:`ChannelOptions` by channel name, cached."""

    def __init__(self, entries: Iterable[ChannelOptions] = DEFAULT_NAMESPACES) -> None:
        self._entries: Sequence[ChannelOptions] = tuple(entries)
        if not self._entries or self._entries[-1].pattern != "*":
            self._entries = (*self._entries, ChannelOptions(pattern="*"))
        self._cache: dict[str, ChannelOptions] = {}

    def __call__(self, channel: Channel) -> ChannelOptions:
        options = self._cache.get(channel)
        if options is None:
            options = next(e for e in self._entries if fnmatch.fnmatchcase(channel, e.pattern))
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[channel] = options
        return options

    @property
    def entries(self) -> Sequence[ChannelOptions]:
        return self._entries

    @classmethod
    def from_json(cls, text: str | bytes) -> Namespaces:
        """Parse a JSON list of :class:`ChannelOptions` objects (``RELAYCAST_NAMESPACES``)."""
        return cls(msgspec.json.decode(text, type=list[ChannelOptions]))
