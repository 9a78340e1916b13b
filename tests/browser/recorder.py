"""A server that answers like a gateway and records everything sent to it: the stand-in for a
server a crafted link points the dashboard at, to prove what the page hands it."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from shared.localredis import free_port

ANSWER = json.dumps({"gateway": "elsewhere", "ready": True, "ticket": "t"}).encode()


class Recorder:
    """An ASGI app: every HTTP request (method, target, headers, body) and every WebSocket
    text frame it receives goes into ``seen``, as text."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        target = f"{scope['path']}?{scope['query_string'].decode()}"
        headers = " ".join(f"{k.decode()}: {v.decode()}" for k, v in scope["headers"])
        if scope["type"] == "websocket":
            self.seen.append(f"WEBSOCKET {target} {headers}")
            await receive()  # websocket.connect
            await send({"type": "websocket.accept"})
            while (event := await receive())["type"] == "websocket.receive":
                self.seen.append(f"FRAME {event.get('text') or event.get('bytes')!r}")
            return
        body = b""
        while True:
            event = await receive()
            body += event.get("body", b"")
            if not event.get("more_body"):
                break
        self.seen.append(f"{scope['method']} {target} {headers} {body.decode(errors='replace')}")
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    # Lets a page send it anything, Authorization included, as a
                    # hostile server would.
                    (b"access-control-allow-origin", b"*"),
                    (b"access-control-allow-headers", b"authorization, content-type"),
                    (b"access-control-allow-methods", b"GET, POST"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": ANSWER})


@contextlib.asynccontextmanager
async def recording_server() -> AsyncIterator[tuple[str, Recorder]]:
    """A real uvicorn on 127.0.0.1 serving a :class:`Recorder`; yields (base URL, recorder)."""
    recorder = Recorder()
    port = free_port()
    config = uvicorn.Config(
        recorder, host="127.0.0.1", port=port, lifespan="off", log_level="error"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if serving.done():
                serving.result()  # raises why it could not start
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}", recorder
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 10)
