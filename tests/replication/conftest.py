"""A real etcd cluster per test (Debian's etcd on loopback), ended with the test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

from deploy import etcd_cluster, procs
from deploy.layout import Layout
from sequencer.etcd import EtcdClient


@dataclass
class Running:
    layout: Layout
    cluster: etcd_cluster.Cluster

    def client(self, timeout_s: float = 2.0) -> EtcdClient:
        return EtcdClient(self.cluster.endpoints, timeout_s=timeout_s)


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[Running]:
    layout = Layout(tmp_path / "net")
    cluster = trio.run(etcd_cluster.up, layout, 3, "127.0.0.1")
    try:
        yield Running(layout, cluster)
    finally:
        trio.run(etcd_cluster.down, layout)
        assert not [m for m in cluster.members if procs.alive(m.handle)]
