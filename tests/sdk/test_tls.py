"""Both clients over mutual TLS (`credentials=`), against the in-process fake."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from rollup_client.protocol.errors import Unavailable
from rollup_client.rpc import TlsFiles
from rollup_client.sdk import SequencerClient, TrioSequencerClient
from rollup_client.wire import sequencer_pb2_grpc as pb_grpc
from tests.sdk.fake import BLOCKS, Fake
from tests.tls import issue, write

pytestmark = pytest.mark.processes


@pytest.fixture
def tls_fake(tmp_path: Path) -> Iterator[tuple[str, TlsFiles]]:
    """A fake sequencer requiring client certificates; its address and a client's files."""
    ca = issue("tandem-ca", None)
    server_files = write(tmp_path, "server", issue("sequencer", ca), ca)
    client_files = write(tmp_path, "client", issue("client", ca), ca)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4), options=[("grpc.so_reuseport", 0)]
    )
    pb_grpc.add_SequencerServiceServicer_to_server(Fake(), server)
    port = server.add_secure_port("127.0.0.1:0", server_files.server_credentials())
    server.start()
    try:
        yield f"127.0.0.1:{port}", client_files
    finally:
        server.stop(None).wait(5)


def test_sync_client_over_mutual_tls(tls_fake: tuple[str, TlsFiles]) -> None:
    target, files = tls_fake
    with SequencerClient(target, credentials=files.channel_credentials(), timeout=5) as client:
        assert client.status().height == BLOCKS[-1].header.height
        assert [b.height for b in itertools.islice(client.subscribe(["a"]), 2)] == [0, 1]
    with SequencerClient(target, timeout=2) as plain, pytest.raises(Unavailable):
        plain.status()


async def test_trio_client_over_mutual_tls(tls_fake: tuple[str, TlsFiles]) -> None:
    target, files = tls_fake
    creds = files.channel_credentials()
    async with TrioSequencerClient(target, credentials=creds, timeout=5) as client:
        assert (await client.status()).chain_id == "fake"
        async with client.subscribe(["a"]) as blocks:
            assert (await blocks.__anext__()).height == 0
