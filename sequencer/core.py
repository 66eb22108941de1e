"""The ordering core: validated batches and a time in, signed blocks and acks out.

Pure: no I/O, no clocks, no threads. The shell passes the current time and the positions
of ids already in the store, so the same inputs always give the same block.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from rollup_client import block, codec
from rollup_client.errors import FailedPrecondition, InvalidArgument, TandemError
from rollup_client.keys import SigningKey


class Item(NamedTuple):
    """One validated entry of a batch (a tuple: built once per entry on the hot path)."""

    namespace: str
    data: bytes
    id: bytes


@dataclass(frozen=True, slots=True)
class Batch:
    """A validated batch; a bundle lands whole, at consecutive positions of one block."""

    items: tuple[Item, ...]
    bundle: bool = False


@dataclass(slots=True)
class Ack:
    """Where an entry is in the log; `duplicate` when it was there before this batch.

    Not frozen: a frozen dataclass pays for object.__setattr__ on every field, and one Ack
    is built per entry.
    """

    id: bytes
    height: int
    index: int
    duplicate: bool


@dataclass(frozen=True, slots=True)
class Head:
    """The newest sealed block, all the core needs to continue the chain."""

    height: int
    hash: bytes
    time_ms: int


@dataclass(frozen=True, slots=True)
class Block:
    """A sealed block: signed header, its namespace table and its entries in index order."""

    header: block.Header
    hash: bytes
    signature: bytes
    table: tuple[block.NsRow, ...]
    items: tuple[Item, ...]

    @property
    def head(self) -> Head:
        return Head(self.header.height, self.hash, self.header.time_ms)


Outcome = tuple[Ack, ...] | TandemError


@dataclass(frozen=True, slots=True)
class Cut:
    """One block, the outcome of each batch it took, and how many batches it took."""

    block: Block
    outcomes: tuple[Outcome, ...]
    taken: int


class Sequencer:
    """Cuts gap-free, hash-linked, signed blocks with never-decreasing log time."""

    def __init__(
        self, key: SigningKey, head: Head | None, max_block_entries: int, genesis_time_ms: int = 0
    ) -> None:
        if max_block_entries < 1:
            raise InvalidArgument("max_block_entries must be at least 1")
        self._key = key
        self.head = head
        self.max_block_entries = max_block_entries
        self._genesis_time_ms = genesis_time_ms

    def take(self, batches: Sequence[Batch]) -> int:
        """How many leading batches fit in the next block (at least one, if any)."""
        total = 0
        for n, b in enumerate(batches):
            total += len(b.items)
            if total > self.max_block_entries and n > 0:
                return n
        return len(batches)

    def cut(self, batches: Sequence[Batch], now_ms: int, known: Mapping[bytes, Ack]) -> Cut:
        """Seal the next block from the leading batches that fit.

        `known` maps ids already in the log (as far as the caller looked them up among
        `batches`) to their original acks; an id found there or earlier in this block is
        acknowledged as a duplicate at its first position instead of being written again.
        """
        taken = self.take(batches)
        items: list[Item] = []
        placed: dict[bytes, int] = {}
        outcomes: list[Outcome] = []
        height = 0 if self.head is None else self.head.height + 1

        def earlier(eid: bytes) -> Ack | None:
            old = known.get(eid)
            if old is not None:
                return Ack(eid, old.height, old.index, True)
            if eid in placed:
                return Ack(eid, height, placed[eid], True)
            return None

        for b in batches[:taken]:
            if b.bundle:
                outcomes.append(self._bundle(b, earlier, items, placed, height))
                continue
            acks = []
            for it in b.items:
                ack = earlier(it.id)
                if ack is None:
                    placed[it.id] = len(items)
                    items.append(it)
                    ack = Ack(it.id, height, placed[it.id], False)
                acks.append(ack)
            outcomes.append(tuple(acks))
        blk = self._seal(height, now_ms, items)
        self.head = blk.head
        return Cut(blk, tuple(outcomes), taken)

    @staticmethod
    def _bundle(
        b: Batch,
        earlier: Callable[[bytes], Ack | None],
        items: list[Item],
        placed: dict[bytes, int],
        height: int,
    ) -> Outcome:
        ids = [it.id for it in b.items]
        if len(set(ids)) != len(ids):
            return InvalidArgument("bundle repeats an entry id")
        prior = [a for a in (earlier(i) for i in ids) if a is not None]
        if len(prior) == len(ids):
            return tuple(prior)
        if prior:
            return FailedPrecondition(
                "bundle overlaps entries already in the log: resubmit the original bundle "
                "or a bundle of new entries only"
            )
        acks = []
        for it in b.items:
            placed[it.id] = len(items)
            items.append(it)
            acks.append(Ack(it.id, height, placed[it.id], False))
        return tuple(acks)

    def _seal(self, height: int, now_ms: int, items: Sequence[Item]) -> Block:
        prev_hash = codec.ZERO_HASH if self.head is None else self.head.hash
        prev_time = self._genesis_time_ms if self.head is None else self.head.time_ms
        table = tuple(block.namespace_table([(it.namespace, it.id) for it in items]))
        header = block.make_header(height, prev_hash, max(prev_time, now_ms), len(items), table)
        h = header.hash
        return Block(header, h, self._key.sign(h), table, tuple(items))
