"""Where a chain lives in etcd, and the transactions that keep it one chain.

Pure: keys, value encodings and transaction builders, no I/O. Everything of one chain is
under `tandem/<chain id>/`, so two chains can share a cluster and a replica pointed at the
wrong one finds another chain's genesis there and refuses it.

- `leader`: who leads, attached to the leader's lease. Its create revision is the term,
  the fencing token: a new leader's key is a new key, so an old leader's compare fails.
- `head`: height and hash of the last committed block.
- `block/<height>`: each committed block, until every replica has stored it.
- `applied/<replica>`: the height each replica has stored, for retention.
- `genesis`: the hash of the chain's genesis document.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

from rollup_client.protocol.errors import InvalidArgument
from sequencer import etcd as e

HEIGHT_DIGITS = 20  # zero-padded, so keys sort as heights do
_HEAD = struct.Struct(">Q32s")


@dataclass(frozen=True, slots=True)
class Leader:
    """What the leader key says: the replica and where it takes submits."""

    replica: str
    endpoint: str

    def encode(self) -> bytes:
        return json.dumps({"replica": self.replica, "endpoint": self.endpoint}).encode()

    @classmethod
    def decode(cls, raw: bytes) -> Leader:
        try:
            doc = json.loads(raw)
            return cls(str(doc["replica"]), str(doc["endpoint"]))
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidArgument(f"the etcd leader key holds no leader: {raw[:64]!r}") from exc


@dataclass(frozen=True, slots=True)
class Head:
    height: int
    hash: bytes

    def encode(self) -> bytes:
        return _HEAD.pack(self.height, self.hash)

    @classmethod
    def decode(cls, raw: bytes) -> Head:
        if len(raw) != _HEAD.size:
            raise InvalidArgument(f"the etcd head key holds {len(raw)} bytes, not {_HEAD.size}")
        height, digest = _HEAD.unpack(raw)
        return cls(height, digest)


class Keys:
    """The keys of one chain."""

    def __init__(self, chain_id: str) -> None:
        self.root = f"tandem/{chain_id}/".encode()
        self.leader = self.root + b"leader"
        self.head = self.root + b"head"
        self.genesis = self.root + b"genesis"
        self.blocks = self.root + b"block/"
        self.applied_prefix = self.root + b"applied/"

    def block(self, height: int) -> bytes:
        return self.blocks + str(height).zfill(HEIGHT_DIGITS).encode()

    def height_of(self, key: bytes) -> int:
        if not key.startswith(self.blocks):
            raise InvalidArgument(f"{key!r} is not a block key of this chain")
        return int(key[len(self.blocks) :])

    def applied(self, replica: str) -> bytes:
        return self.applied_prefix + replica.encode()

    def campaign(self, me: Leader, lease: int) -> e.Txn:
        """Take the leader key if nobody holds it; otherwise read who does."""
        return e.Txn(
            [e.created_at(self.leader, 0)],
            [e.put(self.leader, me.encode(), lease)],
            [e.get(self.leader)],
        )

    def adopt(self, genesis_hash: bytes) -> e.Txn:
        """Record this chain's genesis if the cluster has none; otherwise read the one it has."""
        return e.Txn(
            [e.created_at(self.genesis, 0)],
            [e.put(self.genesis, genesis_hash)],
            [e.get(self.genesis)],
        )

    def commit(self, term: int, parent: Head | None, head: Head, block: bytes) -> e.Txn:
        """Block `head.height` on top of `parent` (None: the chain's first block), if this
        replica still leads with `term` and nothing was committed since `parent`."""
        expected = (
            e.created_at(self.head, 0) if parent is None else e.value_is(self.head, parent.encode())
        )
        return e.Txn(
            [e.created_at(self.leader, term), expected],
            [e.put(self.block(head.height), block), e.put(self.head, head.encode())],
            [e.get(self.leader), e.get(self.head)],
        )
