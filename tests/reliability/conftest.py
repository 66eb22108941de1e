"""The rollup-node tests' real-network fixtures (genesis, sequencer, nodes), shared here."""

import pytest

from tests.rollup_node.conftest import net, sequencer, start_node  # noqa: F401


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "chaos: the 60 s `tandem chaos` run (deselect with -m 'not chaos')"
    )
