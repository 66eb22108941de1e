"""NATS JetStream peer: Debian's nats-server with file storage, publish with ack.

A batch is B publishes in flight at once, done when JetStream has acknowledged every one.
nats-server 2.9 has no per-message fsync setting (it syncs on an interval), so this peer
promises less durability than Tandem and Redis do; the report says so.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.procs import LOOPBACK, PeerUnavailable, Server, free_port, require_binary, running

SUBJECT = "bench"
STREAM = "BENCH"
CALL_TIMEOUT_S = 10.0
READY = re.compile(r"Server is ready")
DURABILITY = "file storage, fsync on nats-server's interval (not per message)"


async def _create_stream(url: str) -> None:
    import nats
    from nats.js.api import StorageType, StreamConfig

    nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=0)
    try:
        js = nc.jetstream(timeout=CALL_TIMEOUT_S)
        await js.add_stream(StreamConfig(name=STREAM, subjects=[SUBJECT], storage=StorageType.FILE))
    finally:
        await nc.close()


@contextmanager
def start(workdir: Path) -> Iterator[dict[str, Any]]:
    """Run nats-server with JetStream on a free loopback port, storing in `workdir`."""
    binary = require_binary("nats-server")
    try:
        import nats  # noqa: F401  (the workers need it; fail here, not in four workers)
    except ImportError as exc:
        raise PeerUnavailable("python package nats-py is not installed") from exc
    store = workdir / "nats"
    store.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [binary, "-js", "-sd", str(store), "-a", LOOPBACK, "-p", str(port)]
    with running(Server(argv, workdir / "nats.log", READY)) as server:
        url = f"nats://{LOOPBACK}:{port}"
        asyncio.run(asyncio.wait_for(_create_stream(url), CALL_TIMEOUT_S))
        yield {"url": url, "pid": server.pid}


class NatsClient:
    """JetStream publishes with ack, all of a batch in flight together."""

    def __init__(self, url: str) -> None:
        import nats

        self.loop = asyncio.new_event_loop()
        self.nc = self.loop.run_until_complete(
            nats.connect(url, connect_timeout=5, max_reconnect_attempts=0)
        )
        self.js = self.nc.jetstream(timeout=CALL_TIMEOUT_S)

    async def _publish(self, payloads: list[bytes]) -> None:
        await asyncio.gather(*(self.js.publish(SUBJECT, p) for p in payloads))

    def send(self, payloads: list[bytes]) -> None:
        self.loop.run_until_complete(self._publish(payloads))

    def close(self) -> None:
        self.loop.run_until_complete(self.nc.close())
        self.loop.close()


def connect(target: dict[str, Any], single: bool) -> NatsClient:
    return NatsClient(target["url"])
