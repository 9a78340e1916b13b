"""``relaycast demo``: realistic tasks and workflows, running forever, for ``relaycast up``.

Up to three jobs run at once, a new one starting whenever a slot frees:

- ``billing``: *Export invoices* (twelve monthly steps, log lines, now and then a pause)
  and *Reconcile payments* (percent progress; fails now and then).
- ``media``: *Transcode video* (percent progress with an estimated time left).
- ``web``: *Deploy web* workflows: build, test, push image, roll out (a failing test
  fails the deploy; now and then one is cancelled during rollout).
- ``ml``: *Train model* workflows: fetch data, train (epochs, weighted 3), evaluate.

``demo.ticks`` gets a counter every ``interval``. ``interval`` sets the pace: each step of
a job takes between half and twice of it.

So that the Alerts panel has something to show, the demo also plays a host of its own,
``demo-db``, published as metrics of your own (a partial snapshot: CPU, queries per
second, open connections; no memory, disk or load). Now and then its CPU runs above 90%
for 75 to 90 samples, one sample per ``interval``, then cools: at the default pace of one
second that outlasts the shipped ``cpu_high`` rule (above 90% for 60 s), so ``relaycast
alerts`` raises a warning about it, and resolves it once the CPU is back under 80%. The
first such spell starts about ten samples in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable

from publisher.metrics import MetricsPublisher
from publisher.publish import AsyncPublisher
from publisher.tasks import Tasks
from shared.broker import BrokerUnavailable
from shared.settings import Settings
from shared.state.tasks import TaskError

__all__ = ["run_demo"]

log = logging.getLogger("relaycast.demo")

CONCURRENT_JOBS = 3
DEMO_HOST = "demo-db"
HOT_SAMPLES = (75, 90)  # a hot spell, in samples: longer than cpu_high's 60 s at 1 s each
CALM_SAMPLES = (120, 300)  # between hot spells
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


class DemoFailure(RuntimeError):
    """A failure the demo stages on purpose."""


class _Demo:
    def __init__(self, tasks: Tasks, interval: float) -> None:
        self.tasks = tasks
        self.interval = interval
        self.counter = 0

    async def pace(self, factor: float = 1.0) -> None:
        await asyncio.sleep(self.interval * factor * random.uniform(0.5, 2.0))

    def next_id(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}-{self.counter}-{random.randrange(16**4):04x}"

    async def export_invoices(self) -> None:
        region = random.choice(["eu", "us", "apac"])
        async with self.tasks.run(
            "billing",
            f"Export invoices ({region})",
            id=self.next_id("export"),
            type="export",
            total_steps=len(MONTHS),
            metadata={"region": region, "format": random.choice(["csv", "pdf"])},
        ) as task:
            rows = 0
            for step, month in enumerate(MONTHS, 1):
                await self.pace(0.5)
                batch = random.randint(800, 5000)
                rows += batch
                await task.progress(step=step, step_name=month, message=f"{rows} invoices")
                if random.random() < 0.2:
                    await task.log(f"{month}: {batch} invoices written", "debug")
                if step == 6 and random.random() < 0.25:
                    await task.pause("waiting for the ledger lock")
                    await self.pace(2)
                    await task.resume("ledger lock acquired")
            await task.complete({"invoices": rows, "file": f"invoices-{region}.zip"})

    async def reconcile_payments(self) -> None:
        async with self.tasks.run(
            "billing", "Reconcile payments", id=self.next_id("reconcile"), type="reconcile"
        ) as task:
            percent = 0.0
            while percent < 100:
                await self.pace(0.4)
                percent = min(100.0, percent + random.uniform(4, 15))
                await task.progress(percent, message=f"{int(percent * 37)} payments matched")
                if percent > 60 and random.random() < 0.05:
                    await task.log("ledger and bank disagree on 3 payments", "error")
                    raise DemoFailure("unmatched payments: 3")
                if random.random() < 0.1:
                    await task.log("bank API slow; retrying", "warning")

    async def transcode(self) -> None:
        name = random.choice(["launch-keynote", "tutorial-07", "customer-story", "webinar"])
        async with self.tasks.run(
            "media",
            f"Transcode {name}.mov",
            id=self.next_id("transcode"),
            type="transcode",
            metadata={"codec": "h264", "resolution": random.choice(["720p", "1080p", "4k"])},
        ) as task:
            percent = 0.0
            while percent < 100:
                await self.pace(0.3)
                percent = min(100.0, percent + random.uniform(2, 8))
                await task.progress(percent, step_name="encoding")
            await task.complete({"bytes": random.randint(50, 900) * 1_000_000})

    async def deploy(self) -> None:
        version = f"v1.{random.randint(0, 40)}.{random.randint(0, 9)}"
        phases = ["build", "test", "push image", ("rollout", 2.0)]
        async with self.tasks.run_workflow(
            "web",
            f"Deploy web {version}",
            id=self.next_id("deploy"),
            phases=phases,
            type="deploy",
            metadata={"version": version, "environment": "production"},
        ) as workflow:
            async with workflow.phase("build") as build:
                for step in range(1, 5):
                    await self.pace(0.5)
                    await build.progress(step=step, total_steps=4, step_name=f"layer {step}/4")
            async with workflow.phase("test") as test:
                for step in range(1, 7):
                    await self.pace(0.4)
                    await test.progress(step=step, total_steps=6, message=f"{step * 40} passed")
                    if step == 4 and random.random() < 0.1:
                        await test.log("test_checkout_total failed", "error")
                        raise DemoFailure("1 test failed")
            async with workflow.phase("push image") as push:
                await self.pace()
                await push.progress(100, message=f"registry/web:{version}")
            async with workflow.phase("rollout") as rollout:
                for percent in (10, 25, 50, 75, 100):
                    await self.pace()
                    await rollout.progress(percent, message=f"{percent}% of pods on {version}")
                    if percent == 25 and random.random() < 0.08:
                        await rollout.cancel("error rate above 1% on the canary")
                        await workflow.cancel("rolled back")
                        return

    async def train(self) -> None:
        model = random.choice(["churn", "fraud", "ranking"])
        epochs = random.randint(5, 10)
        async with self.tasks.run_workflow(
            "ml",
            f"Train {model} model",
            id=self.next_id("train"),
            phases=["fetch data", ("train", 3.0), "evaluate"],
            type="training",
            metadata={"model": model, "epochs": epochs},
        ) as workflow:
            async with workflow.phase("fetch data") as fetch:
                for percent in (30, 70, 100):
                    await self.pace(0.5)
                    await fetch.progress(percent)
            async with workflow.phase("train") as train:
                loss = 1.0
                for epoch in range(1, epochs + 1):
                    await self.pace()
                    loss *= random.uniform(0.6, 0.9)
                    await train.progress(
                        step=epoch, total_steps=epochs, message=f"epoch {epoch}: loss {loss:.3f}"
                    )
            async with workflow.phase("evaluate") as evaluate:
                await self.pace()
                await evaluate.progress(100, message=f"AUC {random.uniform(0.82, 0.95):.3f}")
            await workflow.complete({"loss": round(loss, 4)})


async def _job(run: Callable[[], Awaitable[None]]) -> None:
    try:
        await run()
    except DemoFailure:
        pass  # staged: the task or workflow has been marked failed
    except (BrokerUnavailable, TaskError) as exc:
        log.warning("demo job stopped: %s", exc)


async def _ticks(publisher: AsyncPublisher, interval: float) -> None:
    tick = 0
    while True:
        tick += 1
        with contextlib.suppress(BrokerUnavailable):
            await publisher.publish("demo.ticks", {"tick": tick})
        await asyncio.sleep(interval)


async def _demo_host(settings: Settings, interval: float) -> None:
    """Publish ``demo-db``'s snapshot every ``interval``, with a hot CPU spell now and then."""
    metrics = MetricsPublisher(settings, host=DEMO_HOST)
    hot, left = False, 10
    try:
        while True:
            if left <= 0:
                hot = not hot
                left = random.randint(*(HOT_SAMPLES if hot else CALM_SAMPLES))
            left -= 1
            cpu = random.uniform(92, 99) if hot else random.uniform(12, 45)
            queries = random.uniform(900, 1400) if hot else random.uniform(150, 450)
            snapshot = {
                "interval": interval,
                "cpu": {"percent": round(cpu, 1)},
                "queries": {"per_s": round(queries), "slow_per_s": round(queries / 200, 1)},
                "connections": random.randint(60, 90) if hot else random.randint(15, 35),
            }
            with contextlib.suppress(BrokerUnavailable):
                await metrics.publish(snapshot)
            await asyncio.sleep(interval)
    finally:
        await metrics.close()


async def run_demo(settings: Settings, interval: float = 1.0) -> None:
    """Run demo jobs (and ``demo.ticks``) until cancelled."""
    async with AsyncPublisher(settings=settings) as publisher:
        demo = _Demo(Tasks(publisher=publisher), interval)
        kinds = [
            demo.export_invoices,
            demo.reconcile_payments,
            demo.transcode,
            demo.deploy,
            demo.train,
        ]
        ticks = asyncio.create_task(_ticks(publisher, interval))
        host = asyncio.create_task(_demo_host(settings, interval))
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                while len(running) < CONCURRENT_JOBS:
                    running.add(asyncio.create_task(_job(random.choice(kinds))))
                    await asyncio.sleep(interval * random.uniform(0.2, 1.0))
                _, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ticks.cancel()
            host.cancel()
            for job in running:
                job.cancel()
            await asyncio.gather(ticks, host, *running, return_exceptions=True)
