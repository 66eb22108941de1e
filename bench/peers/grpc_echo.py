"""The transport ceiling: a bare grpcio server with SubmitBatch's message shapes.

It answers SubmitBatch and Submit with one ack per entry and does nothing else: no
signature check, no ordering, no disk. Whatever Tandem loses against it is the cost of
sequencing and durability, not of grpcio. The acks are joined as wire bytes, as the
sequencer writes its own (`wire_bytes.ack_run`): building an EntryAck object per entry was
more than half of this server's GIL time, work no sequencer has to do, and an echo slower
than a sequencer could be is no ceiling. Run as `python -m bench.peers.grpc_echo`.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from bench.procs import LOOPBACK, Server, running
from rollup_client.rpc import server_options, wire_bytes
from rollup_client.wire import sequencer_pb2 as pb
from rollup_client.wire import sequencer_pb2_grpc as pb_grpc

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["SequencerService"].full_name
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
CALL_TIMEOUT_S = 10.0
DURABILITY = "none: the transport ceiling, nothing is stored"
NAMESPACE = "bench"
READY = re.compile(r'"event": "ready", "listen": "([^"]+)"')
_FAKE_ID = b"\x11" * 32


def _submit_batch(request: pb.SubmitBatchRequest, context: grpc.ServicerContext) -> bytes:
    """A SubmitBatchResponse acking every entry at (1, i)."""
    return wire_bytes.ack_run([_FAKE_ID] * len(request.entries), 1, 0)


def _submit(request: pb.SubmitRequest, context: grpc.ServicerContext) -> bytes:
    """A SubmitResponse: with one ack, the same bytes as a SubmitBatchResponse."""
    return wire_bytes.ack_run([_FAKE_ID], 1, 0)


def _as_is(response: bytes) -> bytes:
    return response


def echo_handler() -> grpc.GenericRpcHandler:
    """SubmitBatch and Submit of SequencerService; every other method is UNIMPLEMENTED."""
    return grpc.method_handlers_generic_handler(
        SERVICE_NAME,
        {
            "SubmitBatch": grpc.unary_unary_rpc_method_handler(
                _submit_batch,
                request_deserializer=pb.SubmitBatchRequest.FromString,
                response_serializer=_as_is,
            ),
            "Submit": grpc.unary_unary_rpc_method_handler(
                _submit,
                request_deserializer=pb.SubmitRequest.FromString,
                response_serializer=_as_is,
            ),
        },
    )


def build_server(listen: str, workers: int) -> tuple[grpc.Server, int]:
    """The echo server with health and reflection, bound but not started."""
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="echo-grpc"),
        options=server_options(MAX_MESSAGE_BYTES),
    )
    server.add_generic_rpc_handlers((echo_handler(),))
    checks = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(checks, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    port = server.add_insecure_port(listen)
    for name in ("", SERVICE_NAME):
        checks.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, port


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", default=f"{LOOPBACK}:0")
    parser.add_argument("--workers", type=int, default=32)
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server, port = build_server(args.listen, args.workers)
    server.start()
    host = args.listen.rpartition(":")[0]
    sys.stdout.write(json.dumps({"event": "ready", "listen": f"{host}:{port}"}) + "\n")
    sys.stdout.flush()
    stop.wait()
    server.stop(1.0).wait()


@contextmanager
def start(workdir: Path) -> Iterator[dict[str, Any]]:
    """Run the echo server in its own process; yields its address and pid."""
    argv = [sys.executable, "-m", "bench.peers.grpc_echo", "--listen", f"{LOOPBACK}:0"]
    with running(Server(argv, workdir / "grpc_echo.log", READY)) as server:
        assert server.ready_match is not None
        yield {"address": server.ready_match.group(1), "pid": server.pid}


def channel_options() -> list[tuple[str, int]]:
    """Client options matching the servers': bounded messages, keepalive."""
    return [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
    ]


class EchoClient:
    """Sends SubmitBatch (or Submit, one entry at a time) shaped like the SDK's requests."""

    def __init__(self, address: str, single: bool) -> None:
        self.channel = grpc.insecure_channel(address, options=channel_options())
        self.stub = pb_grpc.SequencerServiceStub(self.channel)
        self.single = single
        self.key = b"\x01" * 32
        self.signature = b"\x02" * 64

    def send(self, payloads: list[bytes]) -> None:
        entries = [pb.Entry(namespace=NAMESPACE, data=p) for p in payloads]
        if self.single:
            for e in entries:
                req = pb.SubmitRequest(client_key=self.key, entry=e, signature=self.signature)
                self.stub.Submit(req, timeout=CALL_TIMEOUT_S)
            return
        request = pb.SubmitBatchRequest(
            client_key=self.key, entries=entries, signature=self.signature
        )
        response = self.stub.SubmitBatch(request, timeout=CALL_TIMEOUT_S)
        if len(response.acks) != len(entries):
            raise RuntimeError(f"{len(response.acks)} acks for {len(entries)} entries")

    def close(self) -> None:
        self.channel.close()


def connect(target: dict[str, Any], single: bool) -> EchoClient:
    client = EchoClient(target["address"], single)
    grpc.channel_ready_future(client.channel).result(timeout=CALL_TIMEOUT_S)
    return client


if __name__ == "__main__":
    main()
