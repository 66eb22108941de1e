"""Deterministic signing keys for tests, one per name, so failures are reproducible."""

from __future__ import annotations

import hashlib

from rollup_client.protocol.keys import SigningKey


def key(name: str) -> SigningKey:
    """The test key called `name` (the same in every test and every run)."""
    return SigningKey.from_seed(hashlib.sha256(b"tandem-test-key/" + name.encode()).digest())
