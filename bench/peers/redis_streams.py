"""Redis Streams peer: Debian's redis-server with AOF and `appendfsync always`.

Each batch is B XADDs in one pipeline (no MULTI), acknowledged once Redis has written
and fsynced them: the same durability promise Tandem makes for a batch.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.procs import LOOPBACK, PeerUnavailable, Server, free_port, require_binary, running

STREAM = "bench"
CALL_TIMEOUT_S = 10.0
DURABILITY = "AOF, appendfsync always"
READY = re.compile(r"Ready to accept connections")


@contextmanager
def start(workdir: Path) -> Iterator[dict[str, Any]]:
    """Run redis-server on a free loopback port with its data in `workdir`."""
    binary = require_binary("redis-server")
    try:
        import redis  # noqa: F401  (the workers need it; fail here, not in four workers)
    except ImportError as exc:
        raise PeerUnavailable("python package redis is not installed") from exc
    data = workdir / "redis"
    data.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [
        binary,
        "--bind", LOOPBACK,
        "--port", str(port),
        "--dir", str(data),
        "--appendonly", "yes",
        "--appendfsync", "always",
        "--save", "",
        "--daemonize", "no",
        "--protected-mode", "yes",
    ]  # fmt: skip
    with running(Server(argv, workdir / "redis.log", READY)) as server:
        yield {"host": LOOPBACK, "port": port, "pid": server.pid}


class RedisClient:
    """XADD pipelined by batch (a batch of one is one XADD per round trip)."""

    def __init__(self, host: str, port: int) -> None:
        import redis

        self.conn = redis.Redis(
            host=host, port=port, socket_timeout=CALL_TIMEOUT_S, socket_connect_timeout=5.0
        )

    def send(self, payloads: list[bytes]) -> None:
        pipe = self.conn.pipeline(transaction=False)
        for p in payloads:
            pipe.xadd(STREAM, {"d": p})
        pipe.execute()

    def close(self) -> None:
        self.conn.close()


def connect(target: dict[str, Any], single: bool) -> RedisClient:
    client = RedisClient(target["host"], target["port"])
    client.conn.ping()
    return client
