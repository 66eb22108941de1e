"""Shared fixtures-in-code for the sequencer tests: a genesis with keys, signed requests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rollup_client.protocol import codec
from rollup_client.protocol.genesis import ANY_NAMESPACE, Client, Genesis
from rollup_client.protocol.keys import SigningKey
from rollup_client.wire import sequencer_pb2 as pb

CHAIN_ID = "test-chain"


@dataclass(frozen=True)
class Net:
    """A data dir with genesis and keys: `client` may write anything, `limited` only "alpha"."""

    data_dir: Path
    genesis: Genesis
    sequencer: SigningKey
    client: SigningKey
    limited: SigningKey
    outsider: SigningKey


def make_net(data_dir: Path) -> Net:
    seq, client, limited, outsider = (SigningKey.from_seed(bytes([i]) * 32) for i in (1, 2, 3, 4))
    genesis = Genesis(
        CHAIN_ID,
        seq.public,
        (
            Client("default", client.public, frozenset({ANY_NAMESPACE})),
            Client("limited", limited.public, frozenset({"alpha"})),
        ),
        time_ms=1_000,
    )
    genesis.save(data_dir / "genesis.json")
    seq.save(data_dir / "keys" / "sequencer.pem")
    client.save(data_dir / "keys" / "client.pem")
    return Net(data_dir, genesis, seq, client, limited, outsider)


def entries(items: Sequence[tuple[str, bytes]]) -> list[pb.Entry]:
    return [pb.Entry(namespace=ns, data=d) for ns, d in items]


def signed_batch(
    key: SigningKey, items: Sequence[tuple[str, bytes]], bundle: bool = False
) -> pb.SubmitBatchRequest:
    digest = codec.batch_digest(CHAIN_ID, [codec.entry_id(ns, d) for ns, d in items], bundle)
    return pb.SubmitBatchRequest(
        client_key=key.public, entries=entries(items), bundle=bundle, signature=key.sign(digest)
    )
