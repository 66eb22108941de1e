"""`TrioSequencerClient`: the same SDK as `SequencerClient`, for trio programs.

Requests, checks and error mapping come from `ClientCore` and `Follower`; only the
transport differs. A unary call is a grpcio future completed into trio (no thread per
call); a stream is read by one thread of its own that hands each message into trio as it
arrives. Every call has a deadline, and a trio cancellation cancels the grpc call, so
nothing keeps running behind it.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import grpc
import trio

from rollup_client.protocol.block import LogEntry, VerifiedBlock
from rollup_client.protocol.errors import TandemError, Unavailable
from rollup_client.rpc.channels import call_unary
from rollup_client.rpc.status import stream_error
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

__all__ = ["Ack", "Limits", "Status", "TrioSequencerClient", "TrioSubscription"]

# Messages a stream's reader thread may fetch ahead of the consumer.
READ_AHEAD = 8


class TrioSequencerClient(BaseClient):
    """Async client of one sequencer; `async with` it, or call `close()` when done.

    `chain_id` and `sequencer_key` default to what the first Status answer reports (trust
    on first use); pass them from the genesis to pin them.
    """

    async def __aenter__(self) -> TrioSequencerClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def _call(self, method: Any, request: Any, timeout: float | None = None) -> Any:
        """One unary call; returns its answer or raises the mapped library error."""
        return await call_unary(method, request, self.timeout if timeout is None else timeout, WHO)

    async def _submit(self, method: Any, request: Any) -> Any:
        """One submission, resent after UNAVAILABLE until the deadline (dedup makes it safe)."""
        deadline = trio.current_time() + self.timeout
        attempt = 0
        while True:
            try:
                return await self._call(method, request, deadline - trio.current_time())
            except Unavailable:
                delay = retry_delay(attempt, deadline - trio.current_time())
                if delay is None:
                    raise
                await trio.sleep(delay)
                attempt += 1

    async def _trust(self) -> None:
        if not self._core.trusted:
            await self.status()

    async def status(self) -> Status:
        """The chain id, durable head and limits; learns or checks the trust anchors."""
        return self._core.parse_status(await self._call(self._stub.Status, pb.StatusRequest()))

    async def submit(self, namespace: str, data: bytes) -> Ack:
        """Log one entry; returns its position once the block holding it is durable."""
        await self._trust()
        req, eid = self._core.submit_request(namespace, data)
        return self._core.submit_ack(await self._submit(self._stub.Submit, req), eid)

    async def submit_batch(
        self, entries: Sequence[tuple[str, bytes]], *, bundle: bool = False, linger_ms: int = 0
    ) -> list[Ack]:
        """Log many entries in one signed call; `bundle`: all in one block, consecutively.

        `linger_ms`: let the sequencer hold the batch that long for company, so that it
        shares a block with the next batch to arrive (see SubmitBatchRequest.linger_ms).
        """
        await self._trust()
        req, ids = self._core.batch_request(entries, bundle, linger_ms)
        resp = await self._submit(self._submit_batch, req)
        return self._core.batch_acks(resp, ids, bundle)

    async def get_block(
        self, height: int, namespaces: Sequence[str] | None = None
    ) -> VerifiedBlock:
        """Block `height`, verified, with the entries of `namespaces` (None: all)."""
        await self._trust()
        req = self._core.block_request(height, namespaces)
        return self._core.parse_block(
            await self._call(self._stub.GetBlock, req), height, namespaces
        )

    async def get_entry(self, entry_id: bytes) -> LogEntry:
        """The entry with this id at its position, its inclusion proof verified."""
        await self._trust()
        req = self._core.entry_request(entry_id)
        return self._core.parse_entry(await self._call(self._stub.GetEntry, req), entry_id)

    def subscribe(
        self,
        namespaces: Sequence[str],
        from_height: int = 0,
        *,
        reconnect_for: float | None = DEFAULT_RECONNECT_FOR_S,
    ) -> TrioSubscription:
        """Every block from `from_height` on, verified and gap-free, resumed after drops.

        Use as `async with client.subscribe(ns) as blocks: async for b in blocks: ...`.
        Raises VerificationError on a bad block, Unavailable when no block came for
        `reconnect_for` seconds (None: keep trying).
        """
        return TrioSubscription(self, namespaces, from_height, reconnect_for)


class TrioSubscription:
    """The async iterator behind `TrioSequencerClient.subscribe`; its exit ends the stream.

    Cancel-safe: a cancelled `__anext__` cancels the stream call, and the next one resumes
    from the block after the last one returned.
    """

    def __init__(
        self,
        client: TrioSequencerClient,
        namespaces: Sequence[str],
        from_height: int,
        reconnect_for: float | None,
    ) -> None:
        self._client = client
        self._args = (list(namespaces), from_height, reconnect_for)
        self._follower: Follower | None = None
        self._reader: _StreamReader | None = None

    async def __aenter__(self) -> TrioSubscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """End the current stream (a later `__anext__` would open a new one)."""
        if self._reader is not None:
            self._reader.stop()
            self._reader = None

    def __aiter__(self) -> TrioSubscription:
        return self

    async def _start(self) -> Follower:
        if self._follower is None:
            await self._client._trust()
            namespaces, from_height, reconnect_for = self._args
            self._follower = Follower(
                self._client._core.sequencer_key_or_fail(),
                namespaces,
                from_height,
                now=trio.current_time(),
                reconnect_for=reconnect_for,
            )
        return self._follower

    async def __anext__(self) -> VerifiedBlock:
        follower = await self._start()
        while not self._client.closed:
            if self._reader is None:
                self._reader = _StreamReader(self._client._stub.Subscribe(follower.request()))
            msg: pb.SubscribeResponse | None = None
            error: TandemError | None = None
            try:
                with trio.move_on_after(self._client.timeout):
                    msg = await self._reader.next()
                if msg is not None:
                    return follower.accept(msg.block, trio.current_time())
            except grpc.RpcError as exc:
                error = stream_error(exc, WHO)
            except BaseException:
                self.close()  # also ends the reader thread
                raise
            self.close()
            if not self._client.closed:
                await trio.sleep(follower.dropped(error, trio.current_time()))
        raise StopAsyncIteration


# What a reader thread hands over: a message, None when the stream ended, or its error.
_Item = pb.SubscribeResponse | Exception | None


class _StreamReader:
    """One stream call, read in a thread of its own into a trio channel, READ_AHEAD at most.

    A `trio.to_thread` hop per message cost a thread dispatch and a cancel scope in trio
    per block; here each message costs trio one `run_sync_soon` callback, and the next
    one is already being awaited while trio handles this one. Messages read ahead of an
    abandoned stream are dropped: the follower resumes after the last block it accepted.
    """

    def __init__(self, call: Any) -> None:
        self._call = call
        self._token = trio.lowlevel.current_trio_token()
        self._send, self._receive = trio.open_memory_channel[_Item](math.inf)
        self._space = threading.Semaphore(READ_AHEAD)
        self._stopped = False
        threading.Thread(target=self._run, name="subscribe-reader", daemon=True).start()

    def _run(self) -> None:
        try:
            for msg in self._call:
                self._space.acquire()
                if self._stopped or not self._hand(msg):
                    return
            self._hand(None)
        except Exception as exc:  # grpc.RpcError mostly: the consumer decides what it means
            self._hand(exc)

    def _hand(self, item: _Item) -> bool:
        """Queue `item` for trio; False (and the call cancelled) once trio has finished."""
        try:
            self._token.run_sync_soon(self._put, item)
        except trio.RunFinishedError:
            self._call.cancel()
            return False
        return True

    def _put(self, item: _Item) -> None:
        with contextlib.suppress(trio.ClosedResourceError, trio.BrokenResourceError):
            self._send.send_nowait(item)

    async def next(self) -> pb.SubscribeResponse | None:
        """The stream's next message, or None when it ended; raises the stream's error."""
        item = await self._receive.receive()
        self._space.release()
        if isinstance(item, Exception):
            raise item
        return item

    def stop(self) -> None:
        """Cancel the call, drop what was read ahead and let the thread finish."""
        self._stopped = True
        self._call.cancel()
        self._receive.close()
        self._space.release()
