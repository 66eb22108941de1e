"""Campaigning for, holding and giving up the leader key of one chain.

A replica leads while the leader key it created exists: the key is attached to a short
lease the leader renews, so it disappears on its own when the leader stops renewing (dead,
paused, cut off). The key's create revision is the term every commit is fenced by, so a
replica that lost the key cannot commit even before it notices. Synchronous; the shell runs
the calls in worker threads.
"""

from __future__ import annotations

from dataclasses import dataclass

from sequencer import etcd as e
from sequencer.replication.keys import Keys, Leader

LEASE_TTL_S = 1


@dataclass(frozen=True, slots=True)
class Term:
    """This replica's leadership: the fencing token and the lease that keeps it."""

    revision: int
    lease: int


class Leadership:
    def __init__(self, client: e.EtcdClient, keys: Keys, me: Leader) -> None:
        self.client = client
        self.keys = keys
        self.me = me

    def campaign(self, ttl_s: int = LEASE_TTL_S) -> Term | None:
        """Take the leader key if it is free; None while another replica holds it."""
        lease = self.client.grant(ttl_s)
        r = self.client.txn(self.keys.campaign(self.me, lease.id))
        if not r.succeeded:
            self.client.revoke(lease.id)
            return None
        return Term(r.header.revision, lease.id)

    def renew(self, term: Term) -> bool:
        """Keep the lease alive; False once it has ended (the key is gone: no longer leader)."""
        return self.client.keep_alive(term.lease) > 0

    def resign(self, term: Term) -> None:
        """Give the key up now, so another replica takes over without waiting for the TTL."""
        self.client.revoke(term.lease)

    def current(self) -> tuple[Leader, int] | None:
        """Who holds the leader key and its term, or None when nobody does."""
        kv = self.client.get(self.keys.leader)
        return None if kv is None else (Leader.decode(kv.value), kv.create_revision)

    def depose(self) -> None:
        """Revoke the holder's lease: for a follower that sees no block for too long. Safe
        even if the holder is only slow: its next commit fails on the term."""
        kv = self.client.get(self.keys.leader)
        if kv is not None and kv.lease:
            self.client.revoke(kv.lease)
