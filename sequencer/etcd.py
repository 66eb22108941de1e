"""A client of an etcd v3 cluster over its gRPC API, for the sequencer's replica set.

Synchronous grpcio stubs generated from the subset of etcd's API in proto/etcdserverpb (no
etcd client on PyPI today works with the locked protobuf). Every call has a timeout; a
member that does not answer is skipped for the next one, and when none answers the caller
gets `Unavailable` naming the endpoints, never a hang. Requests are built by the small
functions at the bottom (`put`, `delete`, `mod_is`, ...) so that a transaction reads like
the rule it enforces.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import grpc

from rollup_client.protocol.errors import FailedPrecondition, TandemError, Unavailable
from rollup_client.rpc.channels import open_channel
from rollup_client.wire import etcd_rpc_pb2 as epb
from rollup_client.wire import etcd_rpc_pb2_grpc as epb_grpc

DEFAULT_TIMEOUT_S = 2.0
# Blocks travel as etcd values: allow answers up to etcd's own request limit and more.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
# Codes after which another member may still answer.
_RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
R = TypeVar("R")


def parse_endpoints(text: str) -> list[str]:
    """`HOST:PORT,HOST:PORT,...` (an `http://` prefix is accepted and dropped)."""
    endpoints = [e.strip().removeprefix("http://") for e in text.split(",") if e.strip()]
    if not endpoints:
        raise FailedPrecondition("no etcd endpoint given: give HOST:PORT[,HOST:PORT...]")
    return endpoints


@dataclass(frozen=True, slots=True)
class Txn:
    """If every compare holds, apply `success`, else `failure`: one atomic step."""

    compare: Sequence[epb.Compare]
    success: Sequence[epb.RequestOp]
    failure: Sequence[epb.RequestOp] = ()


@dataclass(frozen=True, slots=True)
class Lease:
    id: int
    ttl_s: int


class _Member:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.channel = open_channel(
            endpoint, max_message_bytes=MAX_MESSAGE_BYTES, quick_reconnect=True
        )
        self.kv = epb_grpc.KVStub(self.channel)
        self.lease = epb_grpc.LeaseStub(self.channel)
        self.watch = epb_grpc.WatchStub(self.channel)
        self.maintenance = epb_grpc.MaintenanceStub(self.channel)
        self.cluster = epb_grpc.ClusterStub(self.channel)


def _failure(exc: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    """A failed call's status code and details (UNKNOWN for an error that is no Call)."""
    if isinstance(exc, grpc.Call):
        return exc.code(), str(exc.details())
    return grpc.StatusCode.UNKNOWN, str(exc)


class EtcdClient:
    """One etcd cluster, reached through any of its members' client endpoints."""

    def __init__(self, endpoints: Sequence[str], *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        if not endpoints:
            raise FailedPrecondition("no etcd endpoint given")
        self.endpoints = list(endpoints)
        self.timeout_s = timeout_s
        self._members = [_Member(e) for e in self.endpoints]
        self._current = 0
        self._lock = threading.Lock()

    def close(self) -> None:
        for m in self._members:
            m.channel.close()

    def __enter__(self) -> EtcdClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, what: str, fn: Callable[[_Member, float], R]) -> R:
        """`fn` on the member that answered last, then on each other member in turn."""
        with self._lock:
            first = self._current
        failures: list[str] = []
        for step in range(len(self._members)):
            i = (first + step) % len(self._members)
            member = self._members[i]
            try:
                result = fn(member, self.timeout_s)
            except grpc.RpcError as exc:
                code, details = _failure(exc)
                if code not in _RETRYABLE:
                    raise TandemError(f"etcd {what} at {member.endpoint}: {details}") from None
                failures.append(f"{member.endpoint}: {details}")
                continue
            with self._lock:
                self._current = i
            return result
        raise Unavailable(
            f"etcd {what}: no member answered within {self.timeout_s:g} s "
            f"({'; '.join(failures)}); check that the cluster runs (tandem etcd status) "
            "and that these are its members' client endpoints"
        )

    def range(
        self, key: bytes, range_end: bytes = b"", *, limit: int = 0, revision: int = 0
    ) -> epb.RangeResponse:
        req = epb.RangeRequest(key=key, range_end=range_end, limit=limit, revision=revision)
        return self._call("range", lambda m, t: m.kv.Range(req, timeout=t))

    def get(self, key: bytes) -> epb.KeyValue | None:
        kvs = self.range(key).kvs
        return kvs[0] if kvs else None

    def put(self, key: bytes, value: bytes, *, lease: int = 0) -> int:
        """Store `value` at `key`; returns the store revision of the write."""
        req = epb.PutRequest(key=key, value=value, lease=lease)
        return self._call("put", lambda m, t: m.kv.Put(req, timeout=t)).header.revision

    def delete(self, key: bytes, range_end: bytes = b"") -> int:
        req = epb.DeleteRangeRequest(key=key, range_end=range_end)
        return self._call("delete", lambda m, t: m.kv.DeleteRange(req, timeout=t)).deleted

    def txn(self, t: Txn) -> epb.TxnResponse:
        """Run `t`. A transaction is retried on another member only if the first never
        answered. etcd does not say whether a timed-out write was applied, so callers make their
        transactions safe to repeat (a compare that fails the second time).
        """
        req = epb.TxnRequest(compare=t.compare, success=t.success, failure=t.failure)
        return self._call("txn", lambda m, t: m.kv.Txn(req, timeout=t))

    def compact(self, revision: int) -> None:
        req = epb.CompactionRequest(revision=revision)
        self._call("compact", lambda m, t: m.kv.Compact(req, timeout=t))

    def grant(self, ttl_s: int) -> Lease:
        req = epb.LeaseGrantRequest(TTL=ttl_s)
        r = self._call("lease grant", lambda m, t: m.lease.LeaseGrant(req, timeout=t))
        if r.error:
            raise FailedPrecondition(f"etcd refused a {ttl_s} s lease: {r.error}")
        return Lease(r.ID, r.TTL)

    def keep_alive(self, lease_id: int) -> int:
        """Renew the lease once; returns its TTL in seconds, 0 once it has expired."""
        req = epb.LeaseKeepAliveRequest(ID=lease_id)

        def once(m: _Member, t: float) -> int:
            for r in m.lease.LeaseKeepAlive(iter([req]), timeout=t):
                return r.TTL
            return 0

        return self._call("lease keep-alive", once)

    def revoke(self, lease_id: int) -> None:
        """End the lease now: every key attached to it is deleted (an expired one is fine)."""
        req = epb.LeaseRevokeRequest(ID=lease_id)
        try:
            self._call("lease revoke", lambda m, t: m.lease.LeaseRevoke(req, timeout=t))
        except TandemError as exc:
            if "lease not found" not in str(exc):
                raise

    def watch(self, key: bytes, range_end: bytes, start_revision: int) -> Watch:
        """Every change to [key, range_end) from `start_revision` on, in revision order."""
        with self._lock:
            first = self._current
        return Watch(self._members[first:] + self._members[:first], key, range_end, start_revision)

    def status(self, endpoint: str) -> epb.StatusResponse:
        """The status of the member at `endpoint` alone (no failover: it is that member's)."""
        member = next(m for m in self._members if m.endpoint == endpoint)
        try:
            return member.maintenance.Status(epb.StatusRequest(), timeout=self.timeout_s)
        except grpc.RpcError as exc:
            raise Unavailable(f"etcd member {endpoint}: {_failure(exc)[1]}") from None

    def members(self) -> list[epb.Member]:
        req = epb.MemberListRequest()
        r = self._call("member list", lambda m, t: m.cluster.MemberList(req, timeout=t))
        return list(r.members)


class Watch:
    """An iterator of event batches (one per etcd response, in revision order) until
    `cancel()`. A member that fails mid-stream is left for the next, from the revision after
    the last one delivered, so nothing is skipped or repeated. History compacted away
    before `start_revision` raises FailedPrecondition: the watcher must catch up otherwise.
    """

    def __init__(
        self, members: Sequence[_Member], key: bytes, range_end: bytes, start_revision: int
    ) -> None:
        self._members = members
        self._key = key
        self._range_end = range_end
        self.next_revision = start_revision
        self._cancelled = threading.Event()
        self._call: grpc.Call | None = None
        self._lock = threading.Lock()

    def cancel(self) -> None:
        """Stop the watch; an iteration in another thread ends (StopIteration) soon after."""
        self._cancelled.set()
        with self._lock:
            if self._call is not None:
                self._call.cancel()

    def __iter__(self) -> Iterator[list[epb.Event]]:
        failures = 0
        while not self._cancelled.is_set():
            member = self._members[failures % len(self._members)]
            try:
                for events in self._stream(member):
                    failures = 0
                    yield events
            except grpc.RpcError as exc:
                if self._cancelled.is_set():
                    return
                code, details = _failure(exc)
                if code not in _RETRYABLE:
                    raise TandemError(f"etcd watch at {member.endpoint}: {details}") from None
                failures += 1
                if failures >= 3 * len(self._members):
                    raise Unavailable(
                        f"etcd watch: no member of {[m.endpoint for m in self._members]} "
                        "answered; check that the cluster runs (tandem etcd status)"
                    ) from None
                self._cancelled.wait(min(1.0, 0.05 * failures))

    def _stream(self, member: _Member) -> Iterator[list[epb.Event]]:
        create = epb.WatchCreateRequest(
            key=self._key, range_end=self._range_end, start_revision=self.next_revision
        )
        stop: queue.Queue[None] = queue.Queue()

        def requests() -> Iterator[epb.WatchRequest]:
            yield epb.WatchRequest(create_request=create)
            stop.get()  # hold the request side open until the call ends

        call = member.watch.Watch(requests())
        with self._lock:
            self._call = call
        if self._cancelled.is_set():
            call.cancel()
        try:
            for r in call:
                if r.compact_revision:
                    raise FailedPrecondition(
                        f"etcd has compacted its history past revision {self.next_revision} "
                        f"(kept from {r.compact_revision}): catch up from a replica instead"
                    )
                if r.canceled:
                    raise TandemError(f"etcd cancelled the watch: {r.cancel_reason}")
                if r.events:
                    self.next_revision = r.events[-1].kv.mod_revision + 1
                    yield list(r.events)
        finally:
            stop.put(None)
            call.cancel()


def put(key: bytes, value: bytes, lease: int = 0) -> epb.RequestOp:
    return epb.RequestOp(request_put=epb.PutRequest(key=key, value=value, lease=lease))


def get(key: bytes) -> epb.RequestOp:
    return epb.RequestOp(request_range=epb.RangeRequest(key=key))


def delete(key: bytes, range_end: bytes = b"") -> epb.RequestOp:
    return epb.RequestOp(request_delete_range=epb.DeleteRangeRequest(key=key, range_end=range_end))


def created_at(key: bytes, revision: int) -> epb.Compare:
    """`key` was created by the write at `revision` (0: `key` does not exist)."""
    return epb.Compare(
        key=key,
        target=epb.Compare.CREATE,
        result=epb.Compare.EQUAL,
        create_revision=revision,
    )


def value_is(key: bytes, value: bytes) -> epb.Compare:
    return epb.Compare(key=key, target=epb.Compare.VALUE, result=epb.Compare.EQUAL, value=value)


def prefix_end(prefix: bytes) -> bytes:
    """The range_end that makes [prefix, range_end) every key starting with `prefix`."""
    end = bytearray(prefix)
    while end:
        if end[-1] < 0xFF:
            end[-1] += 1
            return bytes(end)
        end.pop()
    return b"\0"  # every key
