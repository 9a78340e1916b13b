"""Sinks: a task's end reaches a webhook (signed), a Slack-compatible webhook and an SMTP
server, all real and started here; failing sinks are retried and recorded; a sink that
hangs delays neither another sink nor the task; destinations outside the allow-list are
refused."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from publisher.notifier import Notifier
from publisher.notify import Notifications, Sink
from publisher.publish import AsyncPublisher
from publisher.tasks import Tasks
from shared.destinations import DestinationRefused
from shared.localredis import free_port
from shared.settings import Settings
from shared.state.notifications import Delivery
from tests.helpers import ROOT
from tests.notifysinks import hook_server, mailbox

SECRET = "hook-secret"


def settings_for(redis_url: str, **overrides: object) -> Settings:
    values = {
        "redis_url": redis_url,
        "notify_destinations": "127.0.0.1",
        "notify_timeout": 2.0,
        "notify_retry_delay": 0.05,
        "notify_max_attempts": 3,
        **overrides,
    }
    return Settings.load(values, env={})


@contextlib.asynccontextmanager
async def notifier_running(settings: Settings) -> AsyncIterator[None]:
    async with AsyncPublisher(settings=settings) as publisher:
        task = asyncio.create_task(Notifier(publisher).run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def settled(notes: Notifications, project: str, count: int) -> dict[str, Delivery]:
    """The project's deliveries by sink, once ``count`` of them are delivered or failed."""
    async with asyncio.timeout(20):
        while True:
            found = {d.sink: d for d in await notes.deliveries(project)}
            if sum(d.status in ("delivered", "failed") for d in found.values()) >= count:
                return found
            await asyncio.sleep(0.05)


async def test_a_failed_task_reaches_a_signed_webhook_slack_and_email(redis_server):
    with mailbox() as box:
        settings = settings_for(redis_server.url, smtp_host="127.0.0.1", smtp_port=box.port)
        async with (
            hook_server() as hooks,
            Notifications(settings=settings) as notes,
            Tasks(settings=settings) as tasks,
            notifier_running(settings),
        ):
            await notes.set_sinks(
                "shop",
                [
                    Sink(name="hook", kind="webhook", url=hooks.url("/ok"), secret=SECRET),
                    Sink(name="chat", kind="slack", url=hooks.url("/ok?chat")),
                    Sink(name="mail", kind="email", to=["ops@example.com"]),
                ],
            )
            task = await tasks.create("shop", "reindex", id="reindex", owner="alice")
            await task.start()
            await task.fail("disk full")
            deliveries = await settled(notes, "shop", 3)

    assert {k: d.status for k, d in deliveries.items()} == {
        "hook": "delivered", "chat": "delivered", "mail": "delivered"
    }  # fmt: skip
    (signed,) = hooks.on("/ok")
    expected = "sha256=" + hmac.new(SECRET.encode(), signed.body, hashlib.sha256).hexdigest()
    assert signed.headers["x-relaycast-signature"] == expected
    body = json.loads(signed.body)
    assert (body["user"], body["type"], body["priority"]) == ("alice", "error", "high")
    assert (body["project"], body["task_id"], body["body"]) == ("shop", "reindex", "disk full")
    (chat,) = hooks.on("/ok?chat")
    assert "x-relaycast-signature" not in chat.headers
    assert (
        set(json.loads(chat.body)) == {"text"} and "reindex failed" in json.loads(chat.body)["text"]
    )
    ((to, mail),) = box.messages
    assert to == ["ops@example.com"] and mail["Subject"] == "[relaycast] reindex failed"
    assert "disk full" in mail.get_payload()


async def test_a_failing_sink_is_retried_then_recorded_as_failed(redis_server):
    settings = settings_for(redis_server.url)  # no SMTP server configured
    async with (
        hook_server() as hooks,
        Notifications(settings=settings) as notes,
        notifier_running(settings),
    ):
        await notes.set_sinks(
            "etl",
            [
                Sink(name="flaky", kind="webhook", url=hooks.url("/fail"), max_attempts=4),
                Sink(name="gone", kind="webhook", url=hooks.url("/gone")),
                Sink(name="mail", kind="email", to=["ops@example.com"]),
            ],
        )
        await notes.send("bob", "Load finished", project="etl")
        deliveries = await settled(notes, "etl", 3)
    flaky, gone, mail = deliveries["flaky"], deliveries["gone"], deliveries["mail"]
    assert (flaky.status, flaky.attempts, flaky.error) == ("failed", 4, "answered HTTP 500")
    assert len(hooks.on("/fail")) == 4
    assert (gone.status, gone.attempts) == ("failed", 1)  # a 404 is not retried
    assert (mail.status, mail.attempts) == ("failed", 1)
    assert "RELAYCAST_SMTP_HOST" in (mail.error or "")


async def test_a_hanging_sink_delays_neither_another_sink_nor_the_task(redis_server):
    settings = settings_for(redis_server.url, notify_timeout=30.0)
    async with (
        hook_server() as hooks,
        Notifications(settings=settings) as notes,
        Tasks(settings=settings) as tasks,
        notifier_running(settings),
    ):
        hang = Sink(name="hang", kind="webhook", url=hooks.url("/hang"))
        await notes.set_sinks("web", [hang, Sink(name="ok", kind="webhook", url=hooks.url("/ok"))])
        for n in range(3):
            async with tasks.run("web", f"deploy {n}", owner="carol"):
                pass
        await hooks.wait_for("/ok", 3)
        # Every notification reached the healthy sink while the hanging one still holds
        # its first attempts: neither the tasks nor the other sink waited for it.
        await hooks.wait_for("/hang", 3)
        deliveries = await notes.deliveries("web")
        hung = [d for d in deliveries if d.sink == "hang"]
        assert [d.status for d in hung] == ["pending"] * 3
        assert await notes.unread("carol") == 3


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://127.0.0.1/x", "http:// or https://"),
        ("file:///etc/passwd", "http:// or https://"),
        ("http://127.0.0.2:9/x", "not an allowed destination"),
        ("http://[::1]:9/x", "not an allowed destination"),
        ("http://user:pw@127.0.0.1/x", "no user or password"),
        ("http://no-such-host.invalid/x", "does not resolve"),
    ],
)
async def test_a_webhook_outside_http_or_the_allow_list_is_refused(redis_server, url, why):
    async with Notifications(settings=settings_for(redis_server.url)) as notes:
        with pytest.raises(DestinationRefused, match=why):
            await notes.set_sinks("p", [Sink(name="x", kind="webhook", url=url)])
        assert (await notes.store.sinks("p")).sinks == []


async def test_by_default_only_public_addresses_are_destinations(redis_server):
    settings = settings_for(redis_server.url, notify_destinations="public")
    async with Notifications(settings=settings) as notes:
        for url in ("http://127.0.0.1:8000/", "http://10.0.0.1/", "http://169.254.169.254/"):
            with pytest.raises(DestinationRefused, match="not an allowed destination"):
                await notes.set_sinks("p", [Sink(name="x", kind="webhook", url=url)])


async def test_relaycast_notify_as_its_own_process_delivers(redis_server):
    settings = settings_for(redis_server.url)
    command = [sys.executable, "-m", "shared.cli", "notify", "--redis-url", redis_server.url,
               "--notify-destinations", "127.0.0.1"]  # fmt: skip
    proc = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE)
    try:
        async with hook_server() as hooks, Notifications(settings=settings) as notes:
            await notes.set_sinks("ops", [Sink(name="hook", kind="webhook", url=hooks.url("/ok"))])
            note = await notes.send("ivan", "Queue drained", project="ops")
            deliveries = await settled(notes, "ops", 1)
        assert deliveries["hook"].status == "delivered"
        assert json.loads(hooks.on("/ok")[0].body)["id"] == note.id
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert b"Traceback" not in err, err.decode()


async def counts(http: httpx.AsyncClient, url: str) -> dict[tuple[str, str], float]:
    """The notifier's counters on ``/metrics``, by (name, sink kind)."""
    response = await http.get(url)
    assert response.status_code == 200, response.text
    return {
        (sample.name, sample.labels["kind"]): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name.startswith("relaycast_notify_") and sample.name.endswith("_total")
    }


async def test_relaycast_notify_counts_deliveries_per_sink_kind_on_its_health_port(redis_server):
    port = free_port()
    with mailbox() as box:
        settings = settings_for(redis_server.url, smtp_host="127.0.0.1", smtp_port=box.port)
        command = [sys.executable, "-m", "shared.cli", "notify", "--redis-url", redis_server.url,
                   "--notify-destinations", "127.0.0.1", "--notify-retry-delay", "0.05",
                   "--smtp-host", "127.0.0.1", "--smtp-port", str(box.port)]  # fmt: skip
        env = {**os.environ, "RELAYCAST_HEALTH_PORT": str(port)}
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE)
        try:
            async with (
                hook_server() as hooks,
                Notifications(settings=settings) as notes,
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http,
            ):
                async with asyncio.timeout(20):
                    while True:
                        with contextlib.suppress(httpx.HTTPError):
                            if (await http.get("/readyz")).status_code == 200:
                                break
                        await asyncio.sleep(0.1)
                before = await counts(http, "/metrics")
                assert set(before.values()) == {0.0} and len(before) == 9  # 3 counters, 3 kinds
                await notes.set_sinks(
                    "ops",
                    [
                        Sink(name="hook", kind="webhook", url=hooks.url("/ok")),
                        Sink(name="chat", kind="slack", url=hooks.url("/ok?chat")),
                        Sink(name="mail", kind="email", to=["ops@example.com"]),
                        Sink(name="flaky", kind="webhook", url=hooks.url("/fail"), max_attempts=3),
                        Sink(name="gone", kind="slack", url=hooks.url("/gone")),
                    ],
                )
                await notes.send("ivan", "Queue drained", project="ops")
                await settled(notes, "ops", 5)
                after = await counts(http, "/metrics")
                assert (await http.get("/healthz")).status_code == 200
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=10)
    assert b"Traceback" not in err, err.decode()
    moved = {key: value for key, value in after.items() if value}
    assert moved == {
        ("relaycast_notify_delivered_total", "webhook"): 1,
        ("relaycast_notify_delivered_total", "slack"): 1,
        ("relaycast_notify_delivered_total", "email"): 1,
        ("relaycast_notify_retried_total", "webhook"): 2,  # /fail: attempts 1 and 2
        ("relaycast_notify_given_up_total", "webhook"): 1,  # /fail: attempt 3
        ("relaycast_notify_given_up_total", "slack"): 1,  # /gone: a 404 is not retried
    }
