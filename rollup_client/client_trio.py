"""`TrioSequencerClient`: the same SDK as `SequencerClient`, for trio programs.

Requests, checks and error mapping come from `ClientCore` and `Follower`; only the
transport differs. A unary call is a grpcio future completed into trio (no thread per
call); a stream is read one message per `trio.to_thread` hop. Every call has a deadline,
and a trio cancellation cancels the grpc call, so nothing keeps running behind it.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any

import grpc
import trio

from rollup_client.block import LogEntry, VerifiedBlock
from rollup_client.client_core import (
    DEFAULT_RECONNECT_FOR_S,
    DEFAULT_TIMEOUT_S,
    MAX_MESSAGE_BYTES,
    Ack,
    ClientCore,
    Limits,
    Status,
    open_channel,
    retry_delay,
    rpc_error,
)
from rollup_client.errors import Unavailable
from rollup_client.keys import SigningKey
from rollup_client.subscription import Follower
from rollup_client.wire import sequencer_pb2 as pb
from rollup_client.wire import sequencer_pb2_grpc as pb_grpc

__all__ = ["Ack", "Limits", "Status", "TrioSequencerClient", "TrioSubscription"]


class TrioSequencerClient:
    """Async client of one sequencer; `async with` it, or call `close()` when done.

    `chain_id` and `sequencer_key` default to what the first Status answer reports (trust
    on first use); pass them from the genesis to pin them.
    """

    def __init__(
        self,
        target: str,
        key: SigningKey | None = None,
        *,
        chain_id: str | None = None,
        sequencer_key: bytes | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        self.timeout = timeout
        self._core = ClientCore(key, chain_id, sequencer_key)
        self._channel = open_channel(target, credentials, MAX_MESSAGE_BYTES)
        self._stub = pb_grpc.SequencerServiceStub(self._channel)
        self.closed = False

    async def __aenter__(self) -> TrioSequencerClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel; calls in flight fail and subscriptions end."""
        self.closed = True
        self._channel.close()

    async def _call(self, method: Any, request: Any, timeout: float | None = None) -> Any:
        """One unary call; returns its answer or raises the mapped library error."""
        token = trio.lowlevel.current_trio_token()
        done = trio.Event()
        fut = method.future(request, timeout=self.timeout if timeout is None else timeout)

        def finished(_: object) -> None:
            try:
                token.run_sync_soon(done.set)
            except trio.RunFinishedError:
                return

        fut.add_done_callback(finished)
        try:
            await done.wait()
        finally:
            fut.cancel()  # a no-op once done; cancels the RPC when trio cancelled us
        try:
            return fut.result()
        except grpc.RpcError as exc:
            raise rpc_error(exc) from None

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
        self, entries: Sequence[tuple[str, bytes]], *, bundle: bool = False
    ) -> list[Ack]:
        """Log many entries in one signed call; `bundle`: all in one block, consecutively."""
        await self._trust()
        req, ids = self._core.batch_request(entries, bundle)
        resp = await self._submit(self._stub.SubmitBatch, req)
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
        self._call: Any = None

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
        if self._call is not None:
            self._call.cancel()
            self._call = None

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
            if self._call is None:
                self._call = self._client._stub.Subscribe(follower.request())
            msg: pb.SubscribeResponse | None = None
            error: grpc.RpcError | None = None
            try:
                with trio.move_on_after(self._client.timeout):
                    msg = await trio.to_thread.run_sync(_next, self._call, abandon_on_cancel=True)
                if msg is not None:
                    return follower.accept(msg.block, trio.current_time())
            except grpc.RpcError as exc:
                error = exc
            except BaseException:
                self.close()  # also ends the abandoned thread blocked on the stream
                raise
            self.close()
            if not self._client.closed:
                await trio.sleep(follower.dropped(error, trio.current_time()))
        raise StopAsyncIteration


def _next(call: Any) -> pb.SubscribeResponse | None:
    """The stream's next message, or None when it ended."""
    try:
        msg: pb.SubscribeResponse = next(call)
    except StopIteration:
        return None
    return msg
