"""The interface between a rollup node and its execution environment.

The node shell (subscription, persistence, RPC) is the same for every rollup; what a
rollup *does* with its ordered entries lives behind this small protocol, so anyone can
plug in their own execution environment (py-libp2p style: the interface in one module).

The node drives a machine block by block, in log order, empty blocks included:

    receipts = machine.begin_block(height, time_ms)   # deadline effects, decisive first
    for entry in block.entries:                        # only machine.namespaces(), by index
        receipt = machine.apply(entry)
    root = machine.state_root()                        # the root *after* block `height`
    for out in machine.take_outbox(): ...              # submit to the sequencer

A machine is a pure, deterministic core: no I/O, no clock, no randomness. Two machines
fed the same log have byte-identical state roots and snapshots. Between blocks the node
serves `RollupService` queries (balances, nonces, escrow) from the same object.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from rollup_client.protocol.block import LogEntry
from rollup_client.protocol.genesis import Genesis
from rollup_client.protocol.keys import SigningKey
from rollup_client.protocol.swap import Leg

BLOCK_START = -1
"""`Receipt.index` of effects that happen at the start of a block, before any entry."""


@dataclass(frozen=True, slots=True)
class Receipt:
    """The result of executing one entry (or one block-start effect) at its position.

    `entry_id` is the id of the log entry executed; for a block-start effect (a swap
    aborted by its deadline) it is the swap id and `index` is BLOCK_START. `reason` is
    empty on success and says exactly what went wrong otherwise. `kind` names what was
    executed (the token ledger uses "transfer", "escrow", "refuse", "commit", "abort");
    `swap_id` is set for swap effects.
    """

    entry_id: bytes
    height: int
    index: int
    ok: bool
    reason: str = ""
    kind: str = ""
    swap_id: bytes | None = None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """An entry the machine asks the node to submit (a vote, for instance).

    `peers` are the other rollups voting on the same swap when this is a vote: their votes
    are on their way too, so the node may ask the sequencer to hold this one for them.
    """

    namespace: str
    data: bytes
    peers: tuple[str, ...] = ()


class StateMachine(Protocol):
    """What a rollup node needs from any execution environment."""

    @property
    def height(self) -> int:
        """Height of the last block begun (-1 before the first): resume from height + 1."""
        ...

    def namespaces(self) -> tuple[str, ...]:
        """The namespaces whose entries this machine executes (subscribe to these)."""
        ...

    def check_stateless(self, data: bytes) -> None:
        """The part of `check` that reads no state (format, signature): the node runs it in
        its gRPC handler threads, in parallel, so it must not touch the machine's state.

        Raises a rollup_client.protocol.errors class (InvalidArgument, Unauthenticated).
        """
        ...

    def check_state(self, data: bytes) -> None:
        """The rest of `check`, for bytes that already passed `check_stateless` (nonce
        against the current state); the node runs it once per batch in the trio thread.

        Raises a rollup_client.protocol.errors class (InvalidArgument, FailedPrecondition).
        """
        ...

    def check(self, data: bytes) -> None:
        """Submission-time validation of a user transaction against the current state:
        `check_stateless` then `check_state`, so the node can refuse it before forwarding it.
        """
        ...

    def begin_block(self, height: int, time_ms: int) -> list[Receipt]:
        """Start block `height` at log time `time_ms`; return the effects decisive at its start."""
        ...

    def apply(self, entry: LogEntry) -> Receipt | None:
        """Execute one entry of the current block; None when the entry concerns no one here."""
        ...

    def state_root(self) -> bytes:
        """The 32-byte commitment to the whole state as it stands now."""
        ...

    def snapshot(self) -> bytes:
        """Bytes from which `restore` rebuilds this exact state (same root, same height)."""
        ...

    def restore(self, data: bytes) -> None:
        """Replace the whole state with a snapshot; raises InvalidArgument if it is corrupt."""
        ...

    def take_outbox(self) -> list[Outgoing]:
        """Entries the node must submit, e.g. votes; emptied by the call."""
        ...

    def owed_votes(self) -> list[tuple[str, bytes]]:
        """Entries owed but not yet seen in the log: resubmit after a restart (dedup-safe)."""
        ...

    # -- queries (RollupService), read between blocks -------------------------------------

    @property
    def assets(self) -> tuple[str, ...]:
        """The assets this rollup holds, in genesis order."""
        ...

    def balance(self, account: bytes, asset: str) -> int:
        """Spendable balance; raises InvalidArgument for an asset this rollup lacks."""
        ...

    def nonce(self, account: bytes) -> int:
        """The nonce the account's next transaction must carry."""
        ...

    def escrow(self, swap_id: bytes) -> tuple[Leg, ...]:
        """The legs `swap_id` holds in escrow here (empty once settled, or if refused)."""
        ...


MachineFactory = Callable[[Genesis, str, SigningKey | None], StateMachine]
"""Builds the machine of a rollup from the genesis. With the rollup's key it signs its own
votes; without one (a read-only replica, `tandem verify`) its outbox stays empty."""
