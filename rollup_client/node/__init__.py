"""The rollup node runtime: it follows the log, applies each block to a StateMachine,
stores receipts and snapshots, and serves RollupService."""

from rollup_client.node.config import NodeConfig
from rollup_client.node.shell import serve
from rollup_client.node.verify import Report, Verifier, verify_blocks

# `cli` and `verify_cli` (the `tandem rollup` and `tandem verify` commands) are listed but not
# imported here: they load typer, which the runtime itself does not need.
__all__ = ["NodeConfig", "Report", "Verifier", "cli", "serve", "verify_blocks", "verify_cli"]
