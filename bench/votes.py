"""Whether each swap's votes shared one block: what `linger_ms` on vote batches is for.

Every rollup of a swap votes as soon as it has executed the intent. Votes cut into
separate blocks cost a block write each and decide the swap one write later, so the
share of swaps whose votes all landed in one block explains much of the swap latency.
Read back from the log after the run, as any client would.
"""

from __future__ import annotations

from collections import defaultdict

from rollup_client.protocol.errors import InvalidArgument
from rollup_client.protocol.genesis import SWAP_NAMESPACE
from rollup_client.protocol.swap import Vote, decode_swap_entry
from rollup_client.sdk import SequencerClient


def head(sequencer: str) -> int:
    """The sequencer's durable height now."""
    with SequencerClient(sequencer) as client:
        return client.status().height


def votes_in_one_block(sequencer: str, first: int, last: int) -> dict[str, int]:
    """Of the swaps voted on in blocks `first`..`last`, how many had every vote in one block."""
    blocks: dict[bytes, set[int]] = defaultdict(set)
    with SequencerClient(sequencer) as client:
        for height in range(first, last + 1):
            for entry in client.get_block(height, [SWAP_NAMESPACE]).entries:
                try:
                    item = decode_swap_entry(entry.data)
                except InvalidArgument:
                    continue
                if isinstance(item, Vote):
                    blocks[item.swap_id].add(height)
    return {
        "swaps": len(blocks),
        "votes_in_one_block": sum(1 for heights in blocks.values() if len(heights) == 1),
    }
