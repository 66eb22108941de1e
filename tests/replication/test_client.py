"""The etcd client against a real 3-member cluster: keys, transactions, leases, watches, and
what a caller sees when members fail."""

from __future__ import annotations

import os
import signal
import time

import pytest
import trio

from deploy import etcd_cluster, procs
from rollup_client.protocol.errors import FailedPrecondition, Unavailable
from rollup_client.wire import etcd_rpc_pb2 as epb
from sequencer import etcd as e
from tests.replication.conftest import Running

WAIT_S = 10.0


def test_put_get_range_delete(etcd: Running) -> None:
    with etcd.client() as c:
        first = c.put(b"block/1", b"one")
        second = c.put(b"block/2", b"two")
        c.put(b"head", b"2")
        assert second == first + 1
        kv = c.get(b"block/1")
        assert kv is not None
        assert kv.value == b"one"
        assert kv.mod_revision == first
        assert c.get(b"block/3") is None
        r = c.range(b"block/", e.prefix_end(b"block/"))
        assert [kv.key for kv in r.kvs] == [b"block/1", b"block/2"]
        assert c.delete(b"block/", e.prefix_end(b"block/")) == 2
        assert c.range(b"block/", e.prefix_end(b"block/")).kvs == []


def test_a_key_is_created_once_by_a_compare_on_its_creation(etcd: Running) -> None:
    """The election's primitive: of two campaigns for one key, exactly one wins."""
    with etcd.client() as c:
        won = c.txn(
            e.Txn([e.created_at(b"leader", 0)], [e.put(b"leader", b"a")], [e.get(b"leader")])
        )
        lost = c.txn(
            e.Txn([e.created_at(b"leader", 0)], [e.put(b"leader", b"b")], [e.get(b"leader")])
        )
        assert won.succeeded
        assert not lost.succeeded
        holder = lost.responses[0].response_range.kvs[0]
        assert holder.value == b"a"
        assert holder.create_revision == won.header.revision
        # The winner's writes hold only while its key is the one it created.
        fenced = c.txn(
            e.Txn([e.created_at(b"leader", won.header.revision)], [e.put(b"head", b"1")])
        )
        stale = c.txn(
            e.Txn([e.created_at(b"leader", won.header.revision - 1)], [e.put(b"head", b"2")])
        )
        assert fenced.succeeded
        assert not stale.succeeded
        assert c.get(b"head").value == b"1"  # type: ignore[union-attr]


def test_a_lease_keeps_its_key_until_it_ends(etcd: Running) -> None:
    with etcd.client() as c:
        lease = c.grant(1)
        assert lease.ttl_s >= 1
        c.put(b"leader", b"a", lease=lease.id)
        assert c.keep_alive(lease.id) >= 1
        c.revoke(lease.id)
        assert c.get(b"leader") is None
        assert c.keep_alive(lease.id) == 0
        c.revoke(lease.id)  # ending an ended lease is not an error


def test_an_expired_lease_deletes_its_key(etcd: Running) -> None:
    with etcd.client() as c:
        lease = c.grant(1)
        rev = c.put(b"leader", b"a", lease=lease.id)
        watch = c.watch(b"leader", b"", rev + 1)
        events = next(iter(watch))  # nothing renews the lease: etcd deletes the key
        watch.cancel()
        assert [(ev.type, ev.kv.key) for ev in events] == [(epb.Event.DELETE, b"leader")]


def test_a_watch_delivers_history_in_order_then_new_writes(etcd: Running) -> None:
    with etcd.client() as c:
        start = c.put(b"block/0", b"0")
        c.put(b"block/1", b"1")
        c.put(b"other", b"x")
        watch = c.watch(b"block/", e.prefix_end(b"block/"), start)
        seen: list[bytes] = []
        for events in watch:
            seen += [ev.kv.value for ev in events]
            if len(seen) == 2:
                c.put(b"block/2", b"2")
            if len(seen) == 3:
                break
        watch.cancel()
        assert seen == [b"0", b"1", b"2"]


def test_a_watch_goes_on_at_another_member_when_its_member_dies(etcd: Running) -> None:
    with etcd.client() as c:
        start = c.put(b"block/0", b"0")
    watched = etcd.cluster.members[0]
    with e.EtcdClient([watched.client, *etcd.cluster.endpoints[1:]]) as c:
        watch = c.watch(b"block/", e.prefix_end(b"block/"), start)
        seen: list[bytes] = []
        for events in watch:
            seen += [ev.kv.value for ev in events]
            if seen == [b"0"]:
                os.kill(watched.pid, signal.SIGKILL)
                with e.EtcdClient(etcd.cluster.endpoints[1:]) as others:
                    for i in range(1, 4):
                        others.put(b"block/%d" % i, b"%d" % i)
            if len(seen) >= 4:
                break
        watch.cancel()
        assert seen == [b"0", b"1", b"2", b"3"]  # no gap and no repeat across the switch


def test_a_cluster_that_lost_one_member_of_three_still_commits(etcd: Running) -> None:
    os.kill(etcd.cluster.members[0].pid, signal.SIGKILL)
    with etcd.client() as c:
        r = c.txn(e.Txn([e.created_at(b"k", 0)], [e.put(b"k", b"v")]))
        assert r.succeeded


def test_no_member_answering_is_unavailable_with_what_to_do(etcd: Running) -> None:
    ports = [procs.free_port("127.0.0.1") for _ in range(2)]
    with e.EtcdClient([f"127.0.0.1:{p}" for p in ports], timeout_s=0.5) as c:
        t = time.monotonic()
        with pytest.raises(Unavailable, match=r"no member answered.*tandem etcd status"):
            c.put(b"k", b"v")
        assert time.monotonic() - t < WAIT_S


def test_a_watch_below_the_compacted_history_is_refused(etcd: Running) -> None:
    with etcd.client() as c:
        first = c.put(b"block/0", b"0")
        last = c.put(b"block/1", b"1")
        c.compact(last)
        with pytest.raises(FailedPrecondition, match="compacted"):
            next(iter(c.watch(b"block/", e.prefix_end(b"block/"), first)))


def test_down_and_up_again_keeps_the_data(etcd: Running) -> None:
    with etcd.client() as c:
        c.put(b"head", b"7")
    trio.run(etcd_cluster.down, etcd.layout)
    again = trio.run(etcd_cluster.up, etcd.layout, 3, "127.0.0.1")
    assert again.endpoints == etcd.cluster.endpoints
    etcd.cluster = again
    with etcd.client() as c:
        assert c.get(b"head").value == b"7"  # type: ignore[union-attr]


def test_parse_endpoints() -> None:
    assert e.parse_endpoints("http://a:1, b:2,") == ["a:1", "b:2"]
    with pytest.raises(FailedPrecondition, match="no etcd endpoint given"):
        e.parse_endpoints(" , ")


def test_prefix_end() -> None:
    assert e.prefix_end(b"block/") == b"block0"
    assert e.prefix_end(b"a\xff") == b"b"
    assert e.prefix_end(b"\xff\xff") == b"\0"
