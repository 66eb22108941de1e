"""Prometheus metrics of a coordinator, on their own registry (tests run several)."""

from __future__ import annotations

from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server


class Metrics:
    """What the coordinator did, and how far it has read the log."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.height = Gauge("tandem_coordinator_log_height", "Last log height read", registry=r)
        self.time_ms = Gauge("tandem_coordinator_log_time_ms", "Log time last read", registry=r)
        self.pending = Gauge(
            "tandem_coordinator_pending_swaps", "Swaps ordered in the log, undecided", registry=r
        )
        self.proposals = Counter("tandem_coordinator_proposals", "Swaps proposed", registry=r)
        self.signatures = Counter(
            "tandem_coordinator_signatures", "Payer signatures accepted", registry=r
        )
        self.submissions = Counter(
            "tandem_coordinator_submissions", "Intents acknowledged by the sequencer", registry=r
        )
        self.submit_failures = Counter(
            "tandem_coordinator_submit_failures", "Intent submissions that failed", registry=r
        )
        self.decisions = Counter(
            "tandem_coordinator_decisions",
            "Swap decisions read from the log",
            ["outcome"],
            registry=r,
        )

    def serve(self, listen: str) -> tuple[str, WSGIServer]:
        """Serve /metrics on HOST:PORT (port 0 picks one); returns the bound address."""
        host, _, port = listen.rpartition(":")
        httpd, _thread = start_http_server(int(port), host, registry=self.registry)
        return f"{host}:{httpd.server_address[1]}", httpd
