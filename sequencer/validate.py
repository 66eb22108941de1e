"""Admission checks for a submitted batch, run in the gRPC handler thread.

Pure and stateless apart from caches, so a bad request is refused before it touches the
core. Status codes (the edge maps the exception classes):

- INVALID_ARGUMENT: malformed fields (client key not 32 bytes), empty batch, an invalid
  namespace name, an entry over `max_entry_bytes`, a batch over `max_batch_entries` or
  `max_batch_bytes`, a bundle that repeats an entry. These never succeed as sent: shrink
  or fix the request.
- UNAUTHENTICATED: key not in genesis, missing signature, signature that does not verify
  over `codec.batch_digest(chain_id, ids, bundle)`.
- PERMISSION_DENIED: a registered, correctly signed client writing a namespace genesis
  does not grant it.
- RESOURCE_EXHAUSTED (raised by the intake, not here): too many batches in flight for one
  client, or the sequencer's queue is full. Retry later.
- FAILED_PRECONDITION (decided by the core when the block is cut): a bundle some but not
  all of whose entries are already in the log. A bundle all of whose entries are logged is
  a resubmission and gets its original positions with duplicate=True.
- UNAVAILABLE: the sequencer is shutting down.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from rollup_client.protocol import codec, keys
from rollup_client.protocol.errors import InvalidArgument, PermissionDenied, Unauthenticated
from rollup_client.protocol.genesis import Client, Genesis
from rollup_client.rpc.submit_reader import BatchFields
from sequencer.config import Limits
from sequencer.core import Batch


class Validator:
    """Turns wire batches into core batches, or raises the error the client should see."""

    def __init__(self, genesis: Genesis, limits: Limits) -> None:
        self.genesis = genesis
        self.limits = limits
        self._valid_ns: set[str] = set()
        # Registered clients' key objects, loaded once: loading one per batch cost more
        # of the handler's GIL time than the rest of the signature check around it.
        self._keys: dict[bytes, Ed25519PublicKey | None] = {}

    def batch(self, req: BatchFields) -> tuple[Client, Batch]:
        """The authenticated client and its batch; one signature check for the whole batch."""
        client = self._client(req.client_key, len(req.datas))
        return client, self._checked(client, req.namespaces, req.datas, req.bundle, req.signature)

    def _client(self, client_key: bytes, entries: int) -> Client:
        """The registered client, once the key and the entry count are acceptable."""
        lim = self.limits
        if len(client_key) != keys.PUBLIC_KEY_BYTES:
            raise InvalidArgument(
                f"client_key must be {keys.PUBLIC_KEY_BYTES} raw bytes, got {len(client_key)}"
            )
        client = self.genesis.client(client_key)
        if client is None:
            raise Unauthenticated(f"client key {client_key.hex()} is not registered in genesis")
        if not entries:
            raise InvalidArgument("batch has no entries")
        if entries > lim.max_batch_entries:
            raise InvalidArgument(f"batch has {entries} entries, limit is {lim.max_batch_entries}")
        return client

    def _checked(
        self,
        client: Client,
        namespaces: Sequence[str],
        datas: Sequence[bytes],
        bundle: bool,
        signature: bytes,
    ) -> Batch:
        lim = self.limits
        sizes = list(map(len, datas))
        if max(sizes) > lim.max_entry_bytes:
            i = next(i for i, n in enumerate(sizes) if n > lim.max_entry_bytes)
            raise InvalidArgument(f"entry {i} has {sizes[i]} bytes, limit is {lim.max_entry_bytes}")
        total = sum(sizes)
        if total > lim.max_batch_bytes:
            raise InvalidArgument(
                f"batch carries {total} bytes of data, limit is {lim.max_batch_bytes}"
            )
        names = set(namespaces)
        for ns in [ns for ns in names if ns not in self._valid_ns]:
            self._valid_ns.add(codec.check_namespace(ns))
        ids = tuple(codec.entry_ids(namespaces, datas))
        if bundle and len(set(ids)) != len(ids):
            raise InvalidArgument("bundle repeats an entry: each entry may appear once")
        if not signature:
            raise Unauthenticated("batch is unsigned")
        digest = codec.batch_digest(self.genesis.chain_id, ids, bundle)
        key = self._key(client.key)
        if key is None or not keys.verify_with(key, signature, digest):
            raise Unauthenticated(
                "signature does not verify over batch_digest(chain_id, entry ids, bundle)"
            )
        for ns in names:
            if not client.may_write(ns):
                raise PermissionDenied(f"client {client.name!r} may not write namespace {ns!r}")
        return Batch(namespaces, datas, ids, bundle)

    def _key(self, public: bytes) -> Ed25519PublicKey | None:
        if public not in self._keys:
            self._keys[public] = keys.load_public(public)
        return self._keys[public]
