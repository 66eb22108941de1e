"""`SequencerClient`: the synchronous SDK of the sequencer, for scripts and worker threads.

    genesis = Genesis.load(Path("data/genesis.json"))
    key = SigningKey.load(Path("data/keys/client.pem"))
    with SequencerClient("127.0.0.1:7000", key, chain_id=genesis.chain_id,
                         sequencer_key=genesis.sequencer_key) as client:
        ack = client.submit("alpha", b"payload")       # durable at (ack.height, ack.index)
        for block in client.subscribe(["alpha"]):      # verified, gap-free, resumes
            ...

Every request, check and error mapping lives in `ClientCore` and `Follower` (shared with
`TrioSequencerClient`); this module only makes the blocking grpcio calls. Each call has a
deadline; a subscription's stream is dropped and resumed when it stays silent for
`timeout` seconds (the sequencer sends a heartbeat block far more often than that).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any, TypeVar

import grpc

from rollup_client.protocol.block import LogEntry, VerifiedBlock
from rollup_client.protocol.errors import TandemError, Unavailable
from rollup_client.rpc.status import rpc_error, stream_error
from rollup_client.sdk.base import BaseClient
from rollup_client.sdk.core import (
    DEFAULT_RECONNECT_FOR_S,
    WHO,
    Ack,
    Limits,
    Status,
    retry_delay,
)
from rollup_client.sdk.subscription import Follower
from rollup_client.wire import sequencer_pb2 as pb

__all__ = ["Ack", "Limits", "SequencerClient", "Status"]

T = TypeVar("T")


class SequencerClient(BaseClient):
    """Blocking client of one sequencer. Thread-safe; close it (or use `with`) when done.

    `chain_id` and `sequencer_key` default to what the first Status answer reports (trust
    on first use); pass them from the genesis to pin them.
    """

    def __enter__(self) -> SequencerClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, method: Callable[..., T], request: Any, timeout: float | None = None) -> T:
        try:
            return method(request, timeout=self.timeout if timeout is None else timeout)
        except grpc.RpcError as exc:
            raise rpc_error(exc, WHO) from None

    def _submit(self, method: Callable[..., T], request: Any) -> T:
        """One submission, resent after UNAVAILABLE until the deadline (dedup makes it safe)."""
        deadline = time.monotonic() + self.timeout
        attempt = 0
        while True:
            try:
                return self._call(method, request, deadline - time.monotonic())
            except Unavailable:
                delay = retry_delay(attempt, deadline - time.monotonic())
                if delay is None:
                    raise
                time.sleep(delay)
                attempt += 1

    def _trust(self) -> None:
        if not self._core.trusted:
            self.status()

    def status(self) -> Status:
        """The chain id, durable head and limits; learns or checks the trust anchors."""
        return self._core.parse_status(self._call(self._stub.Status, pb.StatusRequest()))

    def submit(self, namespace: str, data: bytes) -> Ack:
        """Log one entry; returns its position once the block holding it is durable."""
        self._trust()
        req, eid = self._core.submit_request(namespace, data)
        return self._core.submit_ack(self._submit(self._stub.Submit, req), eid)

    def submit_batch(
        self, entries: Sequence[tuple[str, bytes]], *, bundle: bool = False, linger_ms: int = 0
    ) -> list[Ack]:
        """Log many entries in one signed call; `bundle`: all in one block, consecutively.

        `linger_ms`: let the sequencer hold the batch that long for company, so that it
        shares a block with the next batch to arrive (see SubmitBatchRequest.linger_ms).
        """
        self._trust()
        req, ids = self._core.batch_request(entries, bundle, linger_ms)
        return self._core.batch_acks(self._submit(self._submit_batch, req), ids, bundle)

    def get_block(self, height: int, namespaces: Sequence[str] | None = None) -> VerifiedBlock:
        """Block `height`, verified, with the entries of `namespaces` (None: all)."""
        self._trust()
        req = self._core.block_request(height, namespaces)
        return self._core.parse_block(self._call(self._stub.GetBlock, req), height, namespaces)

    def get_entry(self, entry_id: bytes) -> LogEntry:
        """The entry with this id at its position, its inclusion proof verified."""
        self._trust()
        req = self._core.entry_request(entry_id)
        return self._core.parse_entry(self._call(self._stub.GetEntry, req), entry_id)

    def subscribe(
        self,
        namespaces: Sequence[str],
        from_height: int = 0,
        *,
        reconnect_for: float | None = DEFAULT_RECONNECT_FOR_S,
    ) -> Iterator[VerifiedBlock]:
        """Every block from `from_height` on, verified and gap-free, resumed after drops.

        Raises VerificationError on a bad block, Unavailable when no block came for
        `reconnect_for` seconds (None: keep trying). Close the iterator to end the stream;
        closing the client ends it too.
        """
        self._trust()
        follower = Follower(
            self._core.sequencer_key_or_fail(),
            namespaces,
            from_height,
            now=time.monotonic(),
            reconnect_for=reconnect_for,
        )
        watchdog = _Watchdog(self.timeout)
        try:
            while not self.closed:
                try:
                    call = self._stub.Subscribe(follower.request())
                except ValueError:  # grpcio's answer on a channel closed meanwhile
                    if self.closed:
                        return
                    raise
                watchdog.watch(call)
                error: TandemError | None = None
                try:
                    for msg in call:
                        vb = follower.accept(msg.block, time.monotonic())
                        watchdog.watch(None)  # a slow consumer is not a silent stream
                        yield vb
                        watchdog.watch(call)
                except grpc.RpcError as exc:
                    error = stream_error(exc, WHO)
                finally:
                    call.cancel()
                if not self.closed:
                    time.sleep(follower.dropped(error, time.monotonic()))
        finally:
            watchdog.stop()


class _Watchdog:
    """Cancels the watched stream after `idle_s` without a message: the stream's timeout.

    One thread per subscription; `kick` is a plain attribute write on the hot path.
    """

    def __init__(self, idle_s: float) -> None:
        self._idle_s = idle_s
        self._last = time.monotonic()
        self._call: grpc.Call | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="subscribe-watchdog", daemon=True)
        self._thread.start()

    def watch(self, call: grpc.Call | None) -> None:
        self._call = call
        self.kick()

    def kick(self) -> None:
        self._last = time.monotonic()

    def _run(self) -> None:
        while not self._stopped.wait(max(0.0, self._last + self._idle_s - time.monotonic())):
            if time.monotonic() >= self._last + self._idle_s:
                call = self._call
                if call is not None:
                    call.cancel()
                self.kick()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()
