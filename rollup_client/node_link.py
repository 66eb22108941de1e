"""The node's trio connection to the sequencer: status, batch submit, verified subscribe.

Unary calls use grpcio futures completed into trio (no thread per call, cancellable);
the subscription reads the stream one block per hop, verifies each block (signature,
hash link, namespace proofs) and resumes from the next height after a dropped stream.
Every call has a timeout; a silent stream is dropped after `idle_s` and resumed.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import grpc
import trio

from rollup_client import block, codec
from rollup_client.errors import TandemError, Unavailable, VerificationError
from rollup_client.genesis import Genesis
from rollup_client.keys import SigningKey
from rollup_client.node_config import NodeConfig
from rollup_client.rollup_api import call_unary, channel_options, rpc_error
from rollup_client.wire import sequencer_pb2 as pb
from rollup_client.wire import sequencer_pb2_grpc as pb_grpc

_RECONNECT_S = 0.2
_WHO = "sequencer"


def _error(exc: grpc.RpcError) -> TandemError:
    return rpc_error(exc, _WHO)


class SequencerLink:
    """What the node needs from the sequencer, with its own key and chain id."""

    def __init__(
        self, channel: grpc.Channel, genesis: Genesis, key: SigningKey, timeout: float
    ) -> None:
        self._stub = pb_grpc.SequencerServiceStub(channel)
        self._genesis = genesis
        self._key = key
        self._timeout = timeout
        self.max_batch_entries = 1000
        self.idle_s = max(timeout, 5.0)

    async def status(self) -> pb.StatusResponse:
        resp: pb.StatusResponse = await call_unary(
            self._stub.Status, pb.StatusRequest(), self._timeout, _WHO
        )
        if resp.sequencer_key != self._genesis.sequencer_key:
            raise VerificationError("sequencer reports a key other than the genesis one")
        if resp.limits.max_batch_entries:
            self.max_batch_entries = resp.limits.max_batch_entries
        return resp

    async def submit_batch(
        self, entries: Sequence[tuple[str, bytes]]
    ) -> list[tuple[int, int, bool]]:
        """Submit entries in one signed batch; (height, index, duplicate) once durable."""
        ids = [codec.entry_id(n, d) for n, d in entries]
        req = pb.SubmitBatchRequest(
            client_key=self._key.public,
            entries=[pb.Entry(namespace=n, data=d) for n, d in entries],
            signature=self._key.sign(codec.batch_digest(self._genesis.chain_id, ids, False)),
        )
        resp: pb.SubmitBatchResponse = await call_unary(
            self._stub.SubmitBatch, req, self._timeout, _WHO
        )
        if [a.entry_id for a in resp.acks] != ids:
            raise VerificationError("sequencer acknowledged other entries than were sent")
        return [(a.position.height, a.position.index, a.duplicate) for a in resp.acks]

    async def subscribe(
        self, namespaces: Sequence[str], from_height: int
    ) -> AsyncGenerator[block.VerifiedBlock, None]:
        """Every block from `from_height` on, verified, gap-free, resumed after drops."""
        wanted = sorted(set(namespaces))
        expected, prev_hash = from_height, b""
        while True:
            stream = self._stub.Subscribe(
                pb.SubscribeRequest(namespaces=wanted, from_height=expected)
            )
            try:
                while True:
                    with trio.move_on_after(self.idle_s) as idle:
                        resp = await trio.to_thread.run_sync(_next, stream, abandon_on_cancel=True)
                    if idle.cancelled_caught or resp is None:
                        break
                    blk = block.verify_block(resp.block, self._genesis.sequencer_key, wanted)
                    if blk.height != expected:
                        raise VerificationError(f"expected block {expected}, got {blk.height}")
                    if prev_hash and blk.header.prev_hash != prev_hash:
                        raise VerificationError(f"block {blk.height} does not link to its parent")
                    expected, prev_hash = blk.height + 1, blk.hash
                    yield blk
            except Unavailable:
                pass
            finally:
                stream.cancel()
            await trio.sleep(_RECONNECT_S)


def _next(stream: Any) -> pb.SubscribeResponse | None:
    """The stream's next message; None at its end; Unavailable when it broke."""
    try:
        msg: pb.SubscribeResponse = next(stream)
    except StopIteration:
        return None
    except grpc.RpcError as exc:
        err = _error(exc)
        if isinstance(err, Unavailable) or exc.code() == grpc.StatusCode.CANCELLED:
            raise Unavailable(str(err)) from None
        raise err from None
    return msg


@asynccontextmanager
async def open_link(
    config: NodeConfig, genesis: Genesis, key: SigningKey
) -> AsyncIterator[SequencerLink]:
    """A link over one channel to `config.sequencer`, closed on exit."""
    channel = grpc.insecure_channel(
        config.sequencer, options=channel_options(config.max_message_bytes)
    )
    try:
        yield SequencerLink(channel, genesis, key, config.call_timeout_s)
    finally:
        channel.close()
