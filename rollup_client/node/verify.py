"""Independent verification of a rollup: re-execute the log, check every attestation.

Anyone holding the genesis can do this; it needs neither the rollup node nor its key,
only the sequencer's blocks for the rollup's namespace, `swap` and `settlement`. The
`Verifier` is a pure core fed verified blocks in order; `verify_cli` drives it from a
sequencer client (the `tandem verify` command).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from rollup_client.ledger import TokenLedger
from rollup_client.protocol import attestation, codec
from rollup_client.protocol.block import VerifiedBlock
from rollup_client.protocol.errors import FailedPrecondition, InvalidArgument, VerificationError
from rollup_client.protocol.genesis import SETTLEMENT_NAMESPACE, Genesis
from rollup_client.protocol.statemachine import StateMachine


@dataclass(frozen=True, slots=True)
class Divergence:
    """An attestation whose root is not what re-execution computed (or could not exist)."""

    height: int
    attested: str
    computed: str
    at_height: int
    at_index: int
    reason: str


@dataclass
class Report:
    """What a verification run found; `ok` when every valid attestation matched."""

    rollup: str
    blocks: int = 0
    head: int = -1
    state_root: str = ""
    checked: int = 0
    matched: int = 0
    ignored: list[str] = field(default_factory=list)
    divergences: list[Divergence] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.divergences

    @property
    def first_divergent_height(self) -> int | None:
        return min((d.height for d in self.divergences), default=None)

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["ok"] = self.ok
        doc["first_divergent_height"] = self.first_divergent_height
        return doc


class Verifier:
    """Re-executes one rollup block by block and checks its attestations against itself."""

    def __init__(
        self, genesis: Genesis, rollup_id: str, machine: StateMachine | None = None
    ) -> None:
        self.rollup_key = genesis.rollup(rollup_id).key
        self.machine: StateMachine = machine or TokenLedger(genesis, rollup_id)
        self.report = Report(rollup_id)
        self._executes = frozenset(self.machine.namespaces())
        self._roots = bytearray()
        self._last_hash = codec.ZERO_HASH

    def namespaces(self) -> list[str]:
        """The namespaces to read from the log: the machine's plus `settlement`."""
        return sorted(self._executes | {SETTLEMENT_NAMESPACE})

    def feed(self, block: VerifiedBlock) -> None:
        """Execute the next block, then check the attestations ordered in it."""
        h = block.height
        if h != self.report.head + 1:
            raise FailedPrecondition(f"block {h} out of order: expected {self.report.head + 1}")
        if block.header.prev_hash != self._last_hash:
            raise VerificationError(f"block {h}: previous-hash link to block {h - 1} is broken")
        self._last_hash = block.hash
        m = self.machine
        m.begin_block(h, block.time_ms)
        for e in block.entries:
            if e.namespace in self._executes:
                m.apply(e)
        root = m.state_root()
        self._roots += root
        self.report.blocks += 1
        self.report.head = h
        self.report.state_root = root.hex()
        for e in block.entries:
            if e.namespace == SETTLEMENT_NAMESPACE:
                self._check(e.data, h, e.index)

    def _check(self, data: bytes, at_height: int, at_index: int) -> None:
        where = f"settlement entry at {at_height}:{at_index}"
        try:
            a = attestation.decode(data)
        except InvalidArgument as exc:
            self.report.ignored.append(f"{where}: {exc}")
            return
        if a.rollup != self.report.rollup:
            return
        if not a.verify(self.rollup_key):
            self.report.ignored.append(f"{where}: signature is not the rollup key's")
            return
        self.report.checked += 1
        if a.height >= at_height:
            computed, reason = "", f"attests height {a.height} before it was executed"
        else:
            computed = bytes(self._roots[a.height * 32 : a.height * 32 + 32]).hex()
            reason = "state root differs from re-execution"
        if a.state_root.hex() == computed:
            self.report.matched += 1
        else:
            self.report.divergences.append(
                Divergence(a.height, a.state_root.hex(), computed, at_height, at_index, reason)
            )


def verify_blocks(
    genesis: Genesis,
    rollup_id: str,
    blocks: Iterable[VerifiedBlock],
    progress: Callable[[Report], None] | None = None,
) -> Report:
    """Feed `blocks` (from height 0, in order) to a fresh Verifier; return its report."""
    v = Verifier(genesis, rollup_id)
    for b in blocks:
        v.feed(b)
        if progress is not None:
            progress(v.report)
    return v.report
