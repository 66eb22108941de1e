"""Leadership on a real etcd: one holder, a key that ends with its lease, handover."""

from __future__ import annotations

from sequencer.replication.keys import Keys, Leader
from sequencer.replication.leadership import Leadership
from tests.replication.conftest import Running


def test_one_holder_then_handover_on_resign(etcd: Running) -> None:
    keys = Keys("lead")
    with etcd.client() as c:
        a = Leadership(c, keys, Leader("a", "127.0.0.1:1"))
        b = Leadership(c, keys, Leader("b", "127.0.0.1:2"))
        assert b.current() is None
        term_a = a.campaign()
        assert term_a is not None
        assert b.campaign() is None
        assert b.current() == (Leader("a", "127.0.0.1:1"), term_a.revision)
        assert a.renew(term_a)
        a.resign(term_a)
        assert not a.renew(term_a)
        term_b = b.campaign()
        assert term_b is not None
        assert term_b.revision > term_a.revision


def test_an_unrenewed_lease_ends_leadership(etcd: Running) -> None:
    keys = Keys("expire")
    with etcd.client() as c:
        a = Leadership(c, keys, Leader("a", "x"))
        term = a.campaign(ttl_s=1)
        assert term is not None
        rev = c.get(keys.leader).mod_revision  # type: ignore[union-attr]
        watch = c.watch(keys.leader, b"", rev + 1)
        next(iter(watch))  # the delete, once the lease runs out unrenewed
        watch.cancel()
        assert a.current() is None
        assert not a.renew(term)


def test_a_follower_can_depose_a_silent_leader(etcd: Running) -> None:
    keys = Keys("depose")
    with etcd.client() as c:
        a = Leadership(c, keys, Leader("a", "x"))
        b = Leadership(c, keys, Leader("b", "y"))
        term = a.campaign(ttl_s=30)
        assert term is not None
        b.depose()
        assert b.current() is None
        assert not a.renew(term)
        assert b.campaign() is not None
