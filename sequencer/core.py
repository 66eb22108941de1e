"""The ordering core: validated batches and a time in, signed blocks and acks out.

Pure: no I/O, no clocks, no threads. The shell passes the current time and the positions
of ids already in the store, so the same inputs always give the same block.

Batches, blocks and acks are held as columns (a tuple of namespaces, of data, of ids),
not as an object per entry: the per-entry work on the hot path is then C loops (list
extends, dict updates, set checks), and a batch whose entries are all new is acked as
one run of positions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from rollup_client.protocol import block, codec
from rollup_client.protocol.errors import FailedPrecondition, InvalidArgument, TandemError
from rollup_client.protocol.keys import SigningKey

# (height, index) of an entry in the log.
Position = tuple[int, int]


class Item(NamedTuple):
    """One entry, for readers and tests; the hot path keeps entries as columns."""

    namespace: str
    data: bytes
    id: bytes


class Batch:
    """A validated batch as columns; a bundle lands whole, at consecutive positions."""

    __slots__ = ("bundle", "datas", "ids", "namespaces")

    def __init__(
        self,
        namespaces: Sequence[str],
        datas: Sequence[bytes],
        ids: Sequence[bytes],
        bundle: bool = False,
    ) -> None:
        self.namespaces = namespaces
        self.datas = datas
        self.ids = ids
        self.bundle = bundle

    @classmethod
    def of(cls, items: Iterable[Item], bundle: bool = False) -> Batch:
        its = tuple(items)
        return cls(
            tuple(it.namespace for it in its),
            tuple(it.data for it in its),
            tuple(it.id for it in its),
            bundle,
        )

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def items(self) -> tuple[Item, ...]:
        return tuple(map(Item, self.namespaces, self.datas, self.ids))


@dataclass(slots=True)
class Ack:
    """Where an entry is in the log; `duplicate` when it was there before this batch."""

    id: bytes
    height: int
    index: int
    duplicate: bool


class Acks:
    """The acks of one batch, in entry order.

    A batch of new entries is one run (`height`, `first`, `first + 1`, ...) and costs
    nothing per entry; otherwise `positions` holds (height, index, duplicate) per entry.
    Iterating yields `Ack`s, for code off the hot path.
    """

    __slots__ = ("first", "height", "ids", "positions")

    def __init__(
        self,
        ids: Sequence[bytes],
        height: int,
        first: int,
        positions: Sequence[tuple[int, int, bool]] | None = None,
    ) -> None:
        self.ids = ids
        self.height = height
        self.first = first
        self.positions = positions

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, k: int) -> Ack:
        if self.positions is None:
            return Ack(self.ids[k], self.height, self.first + range(len(self.ids))[k], False)
        return Ack(self.ids[k], *self.positions[k])

    def __iter__(self) -> Iterator[Ack]:
        return (self[k] for k in range(len(self.ids)))


@dataclass(frozen=True, slots=True)
class Head:
    """The newest sealed block, all the core needs to continue the chain."""

    height: int
    hash: bytes
    time_ms: int


@dataclass(frozen=True, slots=True)
class Block:
    """A sealed block: signed header, its namespace table and its entries as columns."""

    header: block.Header
    hash: bytes
    signature: bytes
    table: tuple[block.NsRow, ...]
    namespaces: Sequence[str]
    datas: Sequence[bytes]
    ids: Sequence[bytes]

    @property
    def head(self) -> Head:
        return Head(self.header.height, self.hash, self.header.time_ms)

    @property
    def items(self) -> tuple[Item, ...]:
        return tuple(map(Item, self.namespaces, self.datas, self.ids))


Outcome = Acks | TandemError


@dataclass(frozen=True, slots=True)
class Cut:
    """One block, the outcome of each batch it took, and how many batches it took."""

    block: Block
    outcomes: tuple[Outcome, ...]
    taken: int


class _Building:
    """The columns of the block being cut and where each id in it landed."""

    __slots__ = ("datas", "height", "ids", "namespaces", "placed")

    def __init__(self, height: int) -> None:
        self.height = height
        self.namespaces: list[str] = []
        self.datas: list[bytes] = []
        self.ids: list[bytes] = []
        self.placed: dict[bytes, int] = {}

    def append_all(self, b: Batch) -> int:
        """Append every entry of `b` (none of them placed yet); returns the first index."""
        first = len(self.ids)
        self.placed.update(zip(b.ids, range(first, first + len(b.ids)), strict=True))
        self.namespaces += b.namespaces
        self.datas += b.datas
        self.ids += b.ids
        return first

    def append(self, b: Batch, k: int) -> int:
        """Append entry `k` of `b`; returns its index."""
        at = self.placed[b.ids[k]] = len(self.ids)
        self.namespaces.append(b.namespaces[k])
        self.datas.append(b.datas[k])
        self.ids.append(b.ids[k])
        return at


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
            total += len(b.ids)
            if total > self.max_block_entries and n > 0:
                return n
        return len(batches)

    def cut(self, batches: Sequence[Batch], now_ms: int, known: Mapping[bytes, Position]) -> Cut:
        """Seal the next block from the leading batches that fit.

        `known` maps ids already in the log (as far as the caller looked them up among
        `batches`) to their positions; an id found there or earlier in this block is
        acknowledged as a duplicate at its first position instead of being written again.
        """
        taken = self.take(batches)
        height = 0 if self.head is None else self.head.height + 1
        blk = _Building(height)
        outcomes: list[Outcome] = []
        for b in batches[:taken]:
            ids = b.ids
            fresh = (
                (not known or known.keys().isdisjoint(ids))
                and blk.placed.keys().isdisjoint(ids)
                and len(set(ids)) == len(ids)
            )
            if fresh:
                outcomes.append(Acks(ids, height, blk.append_all(b)))
            elif b.bundle:
                outcomes.append(self._bundle(b, known, blk))
            else:
                outcomes.append(self._with_duplicates(b, known, blk))
        sealed = self._seal(height, now_ms, blk)
        self.head = sealed.head
        return Cut(sealed, tuple(outcomes), taken)

    @staticmethod
    def _earlier(known: Mapping[bytes, Position], blk: _Building) -> Callable[[bytes], Ack | None]:
        def earlier(eid: bytes) -> Ack | None:
            old = known.get(eid)
            if old is not None:
                return Ack(eid, old[0], old[1], True)
            at = blk.placed.get(eid)
            return None if at is None else Ack(eid, blk.height, at, True)

        return earlier

    def _with_duplicates(
        self, b: Batch, known: Mapping[bytes, Position], blk: _Building
    ) -> Outcome:
        earlier = self._earlier(known, blk)
        positions = []
        for k, eid in enumerate(b.ids):
            ack = earlier(eid)
            if ack is None:
                positions.append((blk.height, blk.append(b, k), False))
            else:
                positions.append((ack.height, ack.index, True))
        return Acks(b.ids, blk.height, 0, positions)

    def _bundle(self, b: Batch, known: Mapping[bytes, Position], blk: _Building) -> Outcome:
        ids = b.ids
        if len(set(ids)) != len(ids):
            return InvalidArgument("bundle repeats an entry id")
        earlier = self._earlier(known, blk)
        prior = [a for a in map(earlier, ids) if a is not None]
        if len(prior) == len(ids):
            return Acks(ids, blk.height, 0, [(a.height, a.index, True) for a in prior])
        if prior:
            return FailedPrecondition(
                "bundle overlaps entries already in the log: resubmit the original bundle "
                "or a bundle of new entries only"
            )
        return Acks(ids, blk.height, blk.append_all(b))

    def _seal(self, height: int, now_ms: int, blk: _Building) -> Block:
        prev_hash = codec.ZERO_HASH if self.head is None else self.head.hash
        prev_time = self._genesis_time_ms if self.head is None else self.head.time_ms
        table = tuple(block.table_of(blk.namespaces, blk.ids))
        header = block.make_header(height, prev_hash, max(prev_time, now_ms), len(blk.ids), table)
        h = header.hash
        sig = self._key.sign(h)
        return Block(header, h, sig, table, tuple(blk.namespaces), tuple(blk.datas), tuple(blk.ids))
