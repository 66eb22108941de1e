"""The protocol's rules as pure code: what is hashed, signed, verified and decided.

Nothing here does I/O or imports grpc, trio, sqlite3, threading, time or random (a test
holds it so): every participant, and a second implementation, can run these as they are.
"""

from rollup_client.protocol import (
    attestation,
    block,
    codec,
    errors,
    genesis,
    keys,
    merkle,
    statemachine,
    stateroot,
    swap,
    tx,
)
from rollup_client.protocol.block import LogEntry, VerifiedBlock
from rollup_client.protocol.errors import TandemError
from rollup_client.protocol.genesis import Genesis
from rollup_client.protocol.keys import SigningKey
from rollup_client.protocol.statemachine import Receipt, StateMachine

__all__ = [
    "Genesis",
    "LogEntry",
    "Receipt",
    "SigningKey",
    "StateMachine",
    "TandemError",
    "VerifiedBlock",
    "attestation",
    "block",
    "codec",
    "errors",
    "genesis",
    "keys",
    "merkle",
    "statemachine",
    "stateroot",
    "swap",
    "tx",
]
