"""Prometheus metrics of a rollup node, on their own registry (tests run several nodes)."""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server

from rollup_client.node.bridge import Head


class NodeMetrics:
    """Applied height, log time, transactions applied and lag behind the sequencer."""

    def __init__(self, rollup_id: str) -> None:
        self.registry = CollectorRegistry()
        labels = ["rollup"]
        self._height = Gauge(
            "tandem_rollup_applied_height",
            "Last durable applied block",
            labels,
            registry=self.registry,
        ).labels(rollup_id)
        self._time = Gauge(
            "tandem_rollup_log_time_ms",
            "Log time of the last applied block",
            labels,
            registry=self.registry,
        ).labels(rollup_id)
        self._lag = Gauge(
            "tandem_rollup_lag_blocks",
            "Sequencer height seen minus applied height",
            labels,
            registry=self.registry,
        ).labels(rollup_id)
        self._txs = Counter(
            "tandem_rollup_txs_applied",
            "Entries of this rollup's namespace executed",
            labels,
            registry=self.registry,
        ).labels(rollup_id)
        self._server: tuple[WSGIServer, threading.Thread] | None = None
        self.listen = ""

    def applied(self, head: Head, txs: int) -> None:
        self._height.set(head.height)
        self._time.set(head.time_ms)
        self._lag.set(head.lag)
        self._txs.inc(txs)

    def lag(self, blocks: int) -> None:
        self._lag.set(blocks)

    def start_server(self, listen: str) -> None:
        """Serve /metrics on `listen` (HOST:PORT, port 0 picks one); "" serves nothing."""
        if not listen:
            return
        host, _, port = listen.rpartition(":")
        self._server = start_http_server(int(port), host, registry=self.registry)
        self.listen = f"{host}:{self._server[0].server_port}"

    def stop_server(self) -> None:
        if self._server is not None:
            server, thread = self._server
            server.shutdown()
            server.server_close()
            thread.join()
            self._server = None
