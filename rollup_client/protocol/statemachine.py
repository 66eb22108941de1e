"""The interface between a rollup node and its execution environment.

The node shell (subscription, persistence, RPC) is the same for every rollup; what a
rollup *does* with its ordered entries lives behind this small protocol, so anyone can
plug in their own execution environment (py-libp2p style: the interface in one module).

The node drives a machine block by block, in log order, empty blocks included:

    receipts = machine.begin_block(height, time_ms)   # deadline effects, decisive first
    for entry in block.entries:                        # only machine.namespaces(), by index
        receipt = machine.apply(entry)
    root = machine.state_root()                        # the root *after* block `height`
    for namespace, data in machine.take_outbox(): ...  # submit to the sequencer

A machine is a pure, deterministic core: no I/O, no clock, no randomness. Two machines
fed the same log have byte-identical state roots and snapshots.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from rollup_client.protocol.block import LogEntry

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

    def take_outbox(self) -> list[tuple[str, bytes]]:
        """(namespace, data) entries the node must submit, e.g. votes; emptied by the call."""
        ...

    def owed_votes(self) -> list[tuple[str, bytes]]:
        """Entries owed but not yet seen in the log: resubmit after a restart (dedup-safe)."""
        ...
