"""Prometheus metrics on their own port, one registry per sequencer instance."""

from __future__ import annotations

from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from sequencer.config import split_hostport


class Metrics:
    """Height, entries (rate via rate()), batch and block sizes, commit (fsync) latency."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.height = Gauge(
            "tandem_sequencer_height", "Height of the newest durable block", registry=r
        )
        self.entries = Counter("tandem_sequencer_entries", "Entries written to the log", registry=r)
        self.blocks = Counter("tandem_sequencer_blocks", "Blocks sealed", registry=r)
        self.batch_size = Histogram(
            "tandem_sequencer_batch_entries",
            "Entries per accepted batch",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
            registry=r,
        )
        self.block_size = Histogram(
            "tandem_sequencer_block_entries",
            "Entries per block",
            buckets=(0, 1, 10, 100, 1000, 2000, 5000, 10000),
            registry=r,
        )
        self.fsync = Histogram(
            "tandem_sequencer_commit_seconds",
            "Time to write and fsync one block",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0),
            registry=r,
        )

        self.lingered = Counter(
            "tandem_sequencer_lingered_batches",
            "Batches held for company (SubmitBatchRequest.linger_ms), by how the wait ended: "
            "'company' when another batch came, 'alone' when cut alone (deadline, heartbeat, "
            "stop); many 'alone' mean the clients' linger_ms is shorter than the gap it covers",
            ["ended"],
            registry=r,
        )

    def serve(self, listen: str) -> tuple[str, WSGIServer]:
        """Start the HTTP endpoint on `listen`; returns its bound "host:port" and server."""
        host, port = split_hostport(listen)
        httpd, _thread = start_http_server(port, host, registry=self.registry)
        return f"{host}:{httpd.server_address[1]}", httpd
