"""The rollup node runtime: it follows the log, applies each block to a StateMachine,
stores receipts and snapshots, and serves RollupService."""

from rollup_client.node.config import NodeConfig
from rollup_client.node.shell import serve
from rollup_client.node.verify import Report, Verifier, verify_blocks

__all__ = ["NodeConfig", "Report", "Verifier", "serve", "verify_blocks"]
