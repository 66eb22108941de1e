"""The rollup-node tests' real-network fixtures (genesis, sequencer, nodes), shared here."""

from tests.rollup_node.conftest import net, sequencer, start_node  # noqa: F401
