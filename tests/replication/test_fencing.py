"""The transactions of sequencer/replication/keys.py against a real etcd: one leader at a
time, and never two blocks at one height, whatever the interleaving of campaigns, lease
expiries and commits."""

from __future__ import annotations

import hashlib
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rollup_client.wire import etcd_rpc_pb2 as epb
from sequencer import etcd as e
from sequencer.replication.keys import Head, Keys, Leader
from tests.replication.conftest import Running

_chains = itertools.count()


def run(c: e.EtcdClient, txn: e.Txn) -> epb.TxnResponse:
    return c.txn(txn)


def block(height: int, author: str) -> tuple[Head, bytes]:
    body = f"{height}:{author}".encode()
    return Head(height, hashlib.sha256(body).digest()), body


def test_only_the_current_term_commits(etcd: Running) -> None:
    keys = Keys("fencing")
    a, b = Leader("a", "127.0.0.1:1"), Leader("b", "127.0.0.1:2")
    with etcd.client() as c:
        lease_a, lease_b = c.grant(5), c.grant(5)
        won = run(c, keys.campaign(a, lease_a.id))
        assert won.succeeded
        term_a = won.header.revision
        lost = run(c, keys.campaign(b, lease_b.id))
        assert not lost.succeeded
        assert Leader.decode(lost.responses[0].response_range.kvs[0].value) == a

        h0, b0 = block(0, "a")
        assert run(c, keys.commit(term_a, None, h0, b0)).succeeded
        c.revoke(lease_a.id)  # a's lease ends: a is deposed, whether it knows or not
        took = run(c, keys.campaign(b, lease_b.id))
        assert took.succeeded
        term_b = took.header.revision

        h1a, b1a = block(1, "a")
        assert not run(c, keys.commit(term_a, h0, h1a, b1a)).succeeded
        h1b, b1b = block(1, "b")
        assert run(c, keys.commit(term_b, h0, h1b, b1b)).succeeded
        assert not run(c, keys.commit(term_b, h0, h1b, b1b)).succeeded  # a repeat is refused
        # b lost the answer and cuts another block 1 on the same parent: refused too.
        h1c, b1c = block(1, "b again")
        assert not run(c, keys.commit(term_b, h0, h1c, b1c)).succeeded
        assert c.get(keys.block(1)).value == b1b  # type: ignore[union-attr]
        assert Head.decode(c.get(keys.head).value) == h1b  # type: ignore[union-attr]


REPLICAS = ("r0", "r1")
steps = st.lists(
    st.tuples(
        st.sampled_from(REPLICAS), st.sampled_from(["campaign", "commit", "unacked", "expire"])
    ),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps)
def test_no_interleaving_commits_two_blocks_at_one_height(
    etcd: Running, schedule: list[tuple[str, str]]
) -> None:
    keys = Keys(f"prop-{next(_chains)}")
    # What each replica believes: its term (None: follower) and the head it builds on.
    term: dict[str, int | None] = dict.fromkeys(REPLICAS)
    parent: dict[str, Head | None] = dict.fromkeys(REPLICAS)
    lease: dict[str, int] = {}
    committed: dict[int, bytes] = {}
    with etcd.client() as c:
        for replica, action in schedule:
            if action == "campaign":
                lease.setdefault(replica, c.grant(30).id)
                r = run(c, keys.campaign(Leader(replica, "x"), lease[replica]))
                if r.succeeded:
                    term[replica] = r.header.revision
                    head = c.get(keys.head)
                    parent[replica] = Head.decode(head.value) if head else None
            elif action == "expire" and replica in lease:
                c.revoke(lease.pop(replica))  # the replica may still think it leads
            elif action in ("commit", "unacked") and term[replica] is not None:
                # "unacked": the answer is lost, so the replica builds on its old parent
                # again next time, with a different block at the same height.
                prev = parent[replica]
                h, body = block(
                    0 if prev is None else prev.height + 1, f"{replica}{len(committed)}"
                )
                r = run(c, keys.commit(term[replica] or 0, prev, h, body))
                if r.succeeded:
                    assert h.height not in committed, "two blocks at one height"
                    holder = c.get(keys.leader)
                    assert holder is not None
                    assert holder.create_revision == term[replica]
                    assert Leader.decode(holder.value).replica == replica, "a deposed leader wrote"
                    committed[h.height] = body
                    if action == "commit":
                        parent[replica] = h
        stored = c.range(keys.blocks, e.prefix_end(keys.blocks)).kvs
        assert {keys.height_of(kv.key): kv.value for kv in stored} == committed
        assert sorted(committed) == list(range(len(committed)))  # gap-free
        for lease_id in lease.values():
            c.revoke(lease_id)
