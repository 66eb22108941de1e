"""`tandem etcd up|status|down` as a person runs them: real processes, one directory."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from deploy import etcd_cluster, procs
from deploy.layout import Layout
from tests.deploy.cli_helpers import tandem

pytestmark = pytest.mark.processes


def test_up_status_down(tmp_path: Path) -> None:
    root = tmp_path / "net"
    try:
        up = tandem("etcd", "up", "--dir", str(root))
        assert "client endpoints: 127.0.0.1:" in up.stdout
        again = tandem("etcd", "up", "--dir", str(root), check=False)
        assert again.returncode == 1
        assert "already running" in again.stderr
        doc = json.loads(tandem("etcd", "status", "--dir", str(root), "--json").stdout)
        assert len(doc["members"]) == 3
        assert sum(m["leader"] for m in doc["members"]) == 1
        assert all(m["running"] and m["version"].startswith("3.") for m in doc["members"])
        assert "stopped 3 etcd members" in tandem("etcd", "down", "--dir", str(root)).stdout
        stopped = tandem("etcd", "status", "--dir", str(root), check=False)
        assert stopped.returncode == 1
        assert stopped.stdout.count("down") == 3
    finally:
        cluster = etcd_cluster.load(Layout(root))
        left = [m for m in cluster.members if procs.alive(m.handle)] if cluster else []
        for m in left:
            os.killpg(m.pid, signal.SIGKILL)
        assert not left


def test_status_without_a_cluster_says_how_to_start_one(tmp_path: Path) -> None:
    done = tandem("etcd", "status", "--dir", str(tmp_path), check=False)
    assert done.returncode == 1
    assert "tandem etcd up" in done.stderr
