"""Mutual TLS on the node's server: a client with a CA-signed certificate is served; one
without a certificate, with a certificate from another CA, or without TLS is refused."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import grpc
import pytest
import trio
from cryptography.hazmat.primitives import serialization

from rollup_client.ledger import TokenLedger
from rollup_client.node import NodeConfig, serve
from rollup_client.protocol.errors import Unavailable
from rollup_client.rpc import tls_files
from rollup_client.sdk import TrioRollupClient
from tests.keys import key
from tests.network import Net
from tests.tls import issue, write

from .conftest import FUNDS, GOLD


def test_tls_files_need_all_three(tmp_path: Path) -> None:
    assert tls_files(None, None, None) is None
    with pytest.raises(Exception, match="all three"):
        tls_files(tmp_path / "ca.pem", None, tmp_path / "k.pem")


async def test_mutual_tls(net: Net, sequencer: str, tmp_path: Path) -> None:
    ca, rogue = issue("tandem-ca", None), issue("rogue-ca", None)
    (tmp_path / "rogue").mkdir()
    node_files = write(tmp_path, "node", issue("alpha", ca), ca)
    user_files = write(tmp_path, "user", issue("user", ca), ca)
    rogue_files = write(tmp_path / "rogue", "user", issue("user", rogue), ca)
    cfg = NodeConfig(
        rollup_id="alpha",
        sequencer=sequencer,
        data_dir=net.dir / "alpha",
        genesis=net.genesis_path,
        key=net.key_paths["alpha"],
        tls=node_files,
    )
    alice = key("alice").public
    async with trio.open_nursery() as nursery:
        ends = await nursery.start(partial(serve, cfg, machine_factory=TokenLedger))
        creds = user_files.channel_credentials()
        async with TrioRollupClient(ends.listen, credentials=creds) as c:
            assert await c.balance(alice, GOLD) == FUNDS
        refused: list[grpc.ChannelCredentials | None] = [
            grpc.ssl_channel_credentials(
                root_certificates=ca[0].public_bytes(serialization.Encoding.PEM)
            ),
            rogue_files.channel_credentials(),
            None,
        ]
        for bad in refused:
            async with TrioRollupClient(ends.listen, credentials=bad, timeout=5) as c:
                with pytest.raises(Unavailable):
                    await c.balance(alice, GOLD)
        nursery.cancel_scope.cancel()
