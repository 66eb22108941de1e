"""A local etcd cluster for replica-set testnets and tests: N members of Debian's etcd on
loopback, each with its data and log under the testnet directory.

etcd is the engine the sequencer replicas commit blocks to (DESIGN section 8). Its Raft
timing is set short (heartbeat 50 ms, election 500 ms) because the replicas' leader lease is
about a second, and etcd grants a lease no shorter than its own election allows.
"""

from __future__ import annotations

import json
import secrets
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import trio

from deploy import procs
from deploy.layout import Layout
from rollup_client.protocol.errors import FailedPrecondition, TandemError
from sequencer.etcd import EtcdClient

HEARTBEAT_MS = 50
ELECTION_MS = 500
READY_TIMEOUT_S = 20.0
GRACE_S = 5.0
STATE_FILE = "etcd.json"


def etcd_binary() -> str:
    found = shutil.which("etcd") or shutil.which("etcd", path="/usr/bin:/usr/sbin")
    if found is None:
        raise FailedPrecondition(
            "etcd is not installed: apt-get install etcd-server (deploy/install-test-deps.sh "
            "does it)"
        )
    return found


@dataclass(frozen=True)
class Member:
    name: str
    client: str  # HOST:PORT the sequencer replicas and tools talk to
    peer: str  # HOST:PORT the members replicate over
    pid: int = 0
    start_time: int = 0

    @property
    def handle(self) -> procs.Handle:
        return procs.Handle(self.pid, self.start_time)


@dataclass(frozen=True)
class Cluster:
    token: str
    members: tuple[Member, ...]

    @property
    def endpoints(self) -> list[str]:
        return [m.client for m in self.members]

    def to_json(self) -> dict[str, Any]:
        return {"token": self.token, "members": [asdict(m) for m in self.members]}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Cluster:
        return cls(doc["token"], tuple(Member(**m) for m in doc["members"]))


def plan(count: int = 3, host: str = "127.0.0.1") -> Cluster:
    """Names and free ports for `count` members, and a token no other cluster shares."""
    if count < 1:
        raise FailedPrecondition(f"an etcd cluster needs at least one member, not {count}")
    members = tuple(
        Member(f"etcd-{i}", f"{host}:{procs.free_port(host)}", f"{host}:{procs.free_port(host)}")
        for i in range(count)
    )
    return Cluster(f"tandem-{secrets.token_hex(6)}", members)


def argv(cluster: Cluster, member: Member, data_dir: Path) -> list[str]:
    initial = ",".join(f"{m.name}=http://{m.peer}" for m in cluster.members)
    return [
        etcd_binary(),
        f"--name={member.name}",
        f"--data-dir={data_dir}",
        f"--listen-client-urls=http://{member.client}",
        f"--advertise-client-urls=http://{member.client}",
        f"--listen-peer-urls=http://{member.peer}",
        f"--initial-advertise-peer-urls=http://{member.peer}",
        f"--initial-cluster={initial}",
        f"--initial-cluster-token={cluster.token}",
        "--initial-cluster-state=new",
        f"--heartbeat-interval={HEARTBEAT_MS}",
        f"--election-timeout={ELECTION_MS}",
        "--logger=zap",
        "--log-outputs=stderr",
    ]


def state_path(layout: Layout) -> Path:
    return layout.root / STATE_FILE


def load(layout: Layout) -> Cluster | None:
    try:
        return Cluster.from_json(json.loads(state_path(layout).read_text()))
    except FileNotFoundError:
        return None


def running(cluster: Cluster) -> list[Member]:
    return [m for m in cluster.members if m.pid and procs.alive(m.handle)]


async def up(layout: Layout, count: int = 3, host: str = "127.0.0.1") -> Cluster:
    """Start a new cluster (or restart the members of the one recorded here, same ports and
    data) and return once every member answers and the cluster has a Raft leader."""
    previous = load(layout)
    if previous is not None and running(previous):
        names = ", ".join(m.name for m in running(previous))
        raise FailedPrecondition(f"etcd is already running here ({names}): tandem etcd down first")
    cluster = previous if previous is not None else plan(count, host)
    started: list[Member] = []
    try:
        for m in cluster.members:
            data = layout.data_dir(m.name)
            data.parent.mkdir(parents=True, exist_ok=True)
            h = procs.spawn(argv(cluster, m, data), layout.log(m.name))
            started.append(Member(m.name, m.client, m.peer, h.pid, h.start_time))
        result = Cluster(cluster.token, tuple(started))
        await wait_ready(result, layout)
    except BaseException:
        with trio.CancelScope(shield=True):
            await procs.stop([m.handle for m in started], GRACE_S)
        raise
    state_path(layout).write_text(json.dumps(result.to_json(), indent=2) + "\n")
    return result


async def wait_ready(cluster: Cluster, layout: Layout) -> None:
    """Every member answers Status and agrees that there is a leader."""
    with EtcdClient(cluster.endpoints, timeout_s=1.0) as client:
        with trio.move_on_after(READY_TIMEOUT_S):
            while True:
                for m in cluster.members:
                    if procs.exit_code(m.pid) is not None:
                        raise FailedPrecondition(
                            f"{m.name} exited before the cluster was ready; last lines of "
                            f"{layout.log(m.name)}:\n{procs.tail(layout.log(m.name))}"
                        )
                if await trio.to_thread.run_sync(_all_led, client, cluster):
                    return
                await trio.sleep(procs.POLL_S)
    raise FailedPrecondition(
        f"etcd did not elect a leader within {READY_TIMEOUT_S:.0f} s; see the logs in "
        f"{layout.logs_dir}"
    )


def _all_led(client: EtcdClient, cluster: Cluster) -> bool:
    try:
        return all(client.status(m.client).leader != 0 for m in cluster.members)
    except TandemError:
        return False


async def down(layout: Layout) -> list[str]:
    """Stop every member recorded here, the Raft leader first and one at a time; returns the
    names that were running.

    A leader told to stop hands its leadership to a follower first; if that follower is
    stopping too, the leader waits for an election it cannot win. One at a time, each
    handover has a live follower to go to, and every member stops within moments.
    """
    cluster = load(layout)
    if cluster is None:
        return []
    alive = running(cluster)
    left = list(alive)
    while left:
        leader = await trio.to_thread.run_sync(_leader_of, left)
        await procs.stop([leader.handle], GRACE_S)
        left.remove(leader)
    return [m.name for m in alive]


def _leader_of(members: list[Member]) -> Member:
    """The member that says it leads, or the first one if none answers so."""
    with EtcdClient([m.client for m in members], timeout_s=0.5) as client:
        for m in members:
            try:
                s = client.status(m.client)
            except TandemError:
                continue
            if s.leader == s.header.member_id:
                return m
    return members[0]


def status(cluster: Cluster) -> list[dict[str, Any]]:
    """Per member: running or not, and what it says of itself when it answers."""
    rows: list[dict[str, Any]] = []
    with EtcdClient(cluster.endpoints, timeout_s=1.0) as client:
        for m in cluster.members:
            row: dict[str, Any] = {
                "name": m.name,
                "client": m.client,
                "running": bool(m.pid and procs.alive(m.handle)),
            }
            try:
                s = client.status(m.client)
            except TandemError as exc:
                row["error"] = str(exc)
            else:
                row |= {
                    "version": s.version,
                    "leader": s.leader == s.header.member_id,
                    "raft_term": s.raftTerm,
                    "revision": s.header.revision,
                    "db_bytes": s.dbSize,
                }
            rows.append(row)
    return rows
