"""Delivering one notification to one sink: a webhook, a Slack-compatible incoming webhook,
or email over SMTP. One attempt each, bounded by ``notify_timeout``; the retrying is
``relaycast notify``'s (:mod:`publisher.notifier`).

Webhooks are POSTed over a connection to the address :class:`shared.destinations.Destinations`
checked, never to whatever the name resolves to a moment later, with a small HTTP/1.1
client of its own for that reason (and because only the status line of the answer matters).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import smtplib
import ssl
from email.message import EmailMessage

import msgspec

from shared.destinations import DestinationRefused, Destinations
from shared.settings import Settings
from shared.state.notifications import Notification, Sink

__all__ = ["SIGNATURE_HEADER", "SinkFailure", "deliver"]

SIGNATURE_HEADER = "X-Relaycast-Signature"
"""``sha256=<hex HMAC-SHA256 of the body with the sink's secret>``, on webhook deliveries."""

_encode = msgspec.json.Encoder().encode


class SinkFailure(Exception):
    """An attempt failed; ``retry`` says whether another attempt may succeed."""

    def __init__(self, message: str, *, retry: bool = True) -> None:
        super().__init__(message)
        self.retry = retry


def signature(secret: str, body: bytes) -> str:
    """The value of :data:`SIGNATURE_HEADER` for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def deliver(
    sink: Sink, note: Notification, raw: bytes, settings: Settings, delivery_id: str
) -> None:
    """One attempt to deliver ``note`` (``raw``: its JSON) to ``sink``.

    Raises:
        SinkFailure: it did not arrive; the message says why.
    """
    timeout = settings.notify_timeout
    try:
        async with asyncio.timeout(timeout):
            if sink.kind == "email":
                await _email(sink, note, settings, timeout)
            else:
                assert sink.url is not None  # Sink.check
                body = raw if sink.kind == "webhook" else _slack_body(note)
                headers = {"X-Relaycast-Delivery": delivery_id}
                if sink.kind == "webhook" and sink.secret:
                    headers[SIGNATURE_HEADER] = signature(sink.secret, body)
                await _post(Destinations(settings.notify_destinations), sink.url, body, headers)
    except TimeoutError:
        raise SinkFailure(f"no answer within {timeout:g} s") from None


def _slack_body(note: Notification) -> bytes:
    text = f"*{note.title}*"
    if note.body:
        text += f"\n{note.body}"
    if note.project:
        text += f"\n{note.project}" + (f" / {note.task_id}" if note.task_id else "")
    return _encode({"text": text})


async def _post(allowed: Destinations, url: str, body: bytes, headers: dict[str, str]) -> None:
    try:
        dest = await allowed.check(url)
    except DestinationRefused as exc:
        raise SinkFailure(str(exc), retry=False) from None
    https = dest.scheme == "https"
    default_port = 443 if https else 80
    host = f"[{dest.host}]" if ":" in dest.host else dest.host
    host_header = host if dest.port == default_port else f"{host}:{dest.port}"
    head = (
        f"POST {dest.path} HTTP/1.1\r\nHost: {host_header}\r\n"
        "Content-Type: application/json\r\nUser-Agent: relaycast-notify\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        + "\r\n"
    )
    try:
        reader, writer = await asyncio.open_connection(
            dest.address,
            dest.port,
            ssl=ssl.create_default_context() if https else None,
            server_hostname=dest.host if https else None,
        )
    except OSError as exc:
        raise SinkFailure(f"cannot connect to {dest.host}:{dest.port}: {exc}") from None
    try:
        writer.write(head.encode("latin-1") + body)
        await writer.drain()
        status_line = await reader.readline()
    except OSError as exc:
        raise SinkFailure(f"{dest.host}:{dest.port}: {exc}") from None
    finally:
        writer.close()
    parts = status_line.split()
    if len(parts) < 2 or not parts[1].isdigit():
        raise SinkFailure(f"{dest.host}:{dest.port} did not answer HTTP")
    status = int(parts[1])
    if 200 <= status < 300:
        return
    # A refusal (4xx) will be refused again, unless it asks to come back later.
    raise SinkFailure(f"answered HTTP {status}", retry=status >= 500 or status in (408, 429))


async def _email(sink: Sink, note: Notification, settings: Settings, timeout: float) -> None:
    if not settings.smtp_host:
        raise SinkFailure("no SMTP server: set RELAYCAST_SMTP_HOST", retry=False)
    message = EmailMessage()
    message["Subject"] = f"[relaycast] {note.title}"
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(sink.to)
    text = note.body or note.title
    if note.project:
        text += f"\n\nProject {note.project}" + (f", task {note.task_id}" if note.task_id else "")
    message.set_content(text)

    def send() -> None:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout) as smtp:
            smtp.send_message(message)

    try:
        await asyncio.to_thread(send)
    except smtplib.SMTPResponseException as exc:
        raise SinkFailure(
            f"SMTP {exc.smtp_code}", retry=exc.smtp_code >= 400 and exc.smtp_code < 500
        ) from None
    except (OSError, smtplib.SMTPException) as exc:
        raise SinkFailure(f"SMTP {settings.smtp_host}:{settings.smtp_port}: {exc}") from None
