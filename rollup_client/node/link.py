"""The node's connection to the sequencer: the SDK's trio client, pinned to the genesis.

The SDK does the work (batch signing, verified gap-free resuming subscription, retries
of UNAVAILABLE within each call's timeout); this adapter only keeps the batch limit the
sequencer reports and hands the node plain (height, index, duplicate) acks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from rollup_client.node.config import NodeConfig
from rollup_client.protocol.genesis import Genesis
from rollup_client.protocol.keys import SigningKey
from rollup_client.sdk import Status, TrioSequencerClient, TrioSubscription


class SequencerLink:
    """What the node needs from the sequencer."""

    def __init__(self, client: TrioSequencerClient) -> None:
        self._client = client
        self.max_batch_entries = 1000

    async def status(self) -> Status:
        """The sequencer's head; also learns its batch limit."""
        s = await self._client.status()
        if s.limits.max_batch_entries:
            self.max_batch_entries = s.limits.max_batch_entries
        return s

    async def submit_batch(
        self, entries: Sequence[tuple[str, bytes]], linger_ms: int = 0
    ) -> list[tuple[int, int, bool]]:
        """Submit entries in one signed batch; (height, index, duplicate) once durable."""
        acks = await self._client.submit_batch(entries, linger_ms=linger_ms)
        return [(a.height, a.index, a.duplicate) for a in acks]

    def subscribe(self, namespaces: Sequence[str], from_height: int) -> TrioSubscription:
        """Every block from `from_height` on, verified; reconnects for as long as it takes."""
        return self._client.subscribe(namespaces, from_height, reconnect_for=None)


@asynccontextmanager
async def open_link(
    config: NodeConfig, genesis: Genesis, key: SigningKey
) -> AsyncIterator[SequencerLink]:
    """A link to `config.sequencer` trusting only the genesis chain id and key."""
    async with TrioSequencerClient(
        config.sequencer,
        key,
        chain_id=genesis.chain_id,
        sequencer_key=genesis.sequencer_key,
        timeout=config.call_timeout_s,
        credentials=tls.channel_credentials() if (tls := config.sequencer_tls) else None,
    ) as client:
        yield SequencerLink(client)
