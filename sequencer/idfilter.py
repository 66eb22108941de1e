"""The id index's in-memory Bloom filter: "not indexed" for nearly every new id, no SQLite.

Most ids a SubmitBatch brings are new, and the index would otherwise probe every run for
each. The filter is rbloom's (Rust): adding a flush's ids in a Python loop held the GIL
long enough that every handler thread of the process waited it out (the batches submitted
meanwhile set the half-load p99); rbloom adds them in slices, each a short hold.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import rbloom

# The filter holds at least this many ids at this false-positive rate, and is
# rebuilt larger once it holds more (reading every id back from the runs).
MIN_IDS = 4_000_000
FALSE_POSITIVES = 0.014
# Ids per call into rbloom, which holds the GIL for a whole call: a slice is about a
# millisecond, so a rebuild over millions of ids never stops the handler threads for long.
SLICE_IDS = 4096


class IdFilter:
    """A Bloom filter over ids (keyed by Python's hash of the id bytes, which a dict key
    already has cached): an id it does not hold was never added. In memory only: hashes
    vary by process."""

    def __init__(self, ids: int) -> None:
        self.capacity = max(MIN_IDS, 2 * ids)
        self.count = 0
        self._bloom = rbloom.Bloom(self.capacity, FALSE_POSITIVES)

    def add(self, ids: Iterable[bytes]) -> None:
        it = iter(ids)
        while chunk := list(itertools.islice(it, SLICE_IDS)):
            self._bloom.update(chunk)
            self.count += len(chunk)

    def maybe(self, ids: Iterable[bytes]) -> list[bytes]:
        """Those of `ids` that may have been added."""
        bloom = self._bloom
        return [eid for eid in ids if eid in bloom]
