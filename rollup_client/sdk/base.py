"""What both sequencer clients are made of (httpx's `BaseClient`): the trust anchors and
answer checks (`ClientCore`), and one channel to the sequencer with its stubs.

`SequencerClient` and `TrioSequencerClient` differ only in how a call crosses that channel.
"""

from __future__ import annotations

import grpc

from rollup_client.protocol.keys import SigningKey
from rollup_client.rpc.channels import open_channel, raw_method
from rollup_client.sdk.core import DEFAULT_TIMEOUT_S, MAX_MESSAGE_BYTES, SERVICE, ClientCore
from rollup_client.wire import sequencer_pb2_grpc as pb_grpc


class BaseClient:
    """One channel to one sequencer, and the core that builds requests and checks answers."""

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
        self._channel = open_channel(
            target,
            credentials,
            max_message_bytes=MAX_MESSAGE_BYTES,
            ping_when_idle=False,
            quick_reconnect=True,
        )
        self._stub = pb_grpc.SequencerServiceStub(self._channel)
        self._submit_batch = raw_method(self._channel, SERVICE, "SubmitBatch")
        self.closed = False

    def close(self) -> None:
        """Close the channel; calls in flight fail and subscriptions end."""
        self.closed = True
        self._channel.close()
