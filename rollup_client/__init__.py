"""The library every Tandem participant imports, one subpackage per part.

- `protocol`: the pure rules (codec, Merkle trees, blocks and proofs, keys, genesis, errors,
  swap messages and the swap tracker, attestations, the StateMachine interface). No I/O.
- `rpc`: grpc plumbing every process shares (server, channels, status codes, TLS, wire
  fast paths).
- `sdk`: the clients (sequencer, sync and trio; the subscription follower; the rollup client).
- `node`: the rollup node runtime (shell, block application, store, edge, config, verifier).
- `ledger`: the reference token-ledger rollup, a StateMachine.
- `wire`: generated code only (python proto/generate.py).

Imports point down that list: `protocol` imports nothing of ours; `rpc` and `ledger` import
`protocol`; `sdk` imports `rpc` and `protocol`; `node` may import all of them.
"""
