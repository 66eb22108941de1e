"""A committed block as it is stored in etcd, and its check by a replica that reads it.

The record is the block in the wire form every reader verifies (a FilteredBlock with every
namespace), so a replica trusts what it reads from etcd exactly as a rollup trusts what it
reads from a sequencer: signature, header hash, namespace table, entries and ids, and the
hash link to the block before. Pure: no I/O.
"""

from __future__ import annotations

from collections import defaultdict

from google.protobuf.message import DecodeError

from rollup_client.protocol import block
from rollup_client.protocol.errors import VerificationError
from rollup_client.wire import sequencer_pb2 as pb
from sequencer.core import Block, Head


def encode(blk: Block) -> bytes:
    entries: dict[str, list[tuple[int, bytes]]] = defaultdict(list)
    for i, (ns, data) in enumerate(zip(blk.namespaces, blk.datas, strict=True)):
        entries[ns].append((i, data))
    fb = block.filtered_block(blk.header, blk.signature, blk.table, entries, None)
    return fb.SerializeToString()


def decode(raw: bytes, sequencer_key: bytes, parent: Head | None) -> Block:
    """The block in `raw`, checked, and checked to follow `parent` (None: block 0 follows
    nothing); VerificationError for anything else."""
    try:
        fb = pb.FilteredBlock.FromString(raw)
    except DecodeError as exc:
        raise VerificationError(f"an etcd block record does not parse: {exc}") from None
    vb = block.verify_block(fb, sequencer_key, None)
    height = 0 if parent is None else parent.height + 1
    if vb.height != height:
        raise VerificationError(f"etcd holds block {vb.height} where block {height} belongs")
    if parent is not None and (
        vb.header.prev_hash != parent.hash or vb.header.time_ms < parent.time_ms
    ):
        raise VerificationError(f"block {height} in etcd does not follow block {parent.height}")
    namespaces = [e.namespace for e in vb.entries]
    ids = [e.id for e in vb.entries]
    return Block(
        vb.header,
        vb.hash,
        vb.signature,
        tuple(block.table_of(namespaces, ids)),
        namespaces,
        [e.data for e in vb.entries],
        ids,
    )
