"""The clients a rollup builder uses: the sequencer's (sync and trio) and a rollup node's."""

from rollup_client.sdk.client import SequencerClient
from rollup_client.sdk.client_trio import TrioSequencerClient, TrioSubscription
from rollup_client.sdk.core import Ack, Status
from rollup_client.sdk.rollup import RollupClient, Submitted, TrioRollupClient, TxReceipt

# `cli` (the `tandem log` commands) is listed but not imported here: it loads typer, which
# the library itself does not need.
__all__ = [
    "Ack",
    "RollupClient",
    "SequencerClient",
    "Status",
    "Submitted",
    "TrioRollupClient",
    "TrioSequencerClient",
    "TrioSubscription",
    "TxReceipt",
    "cli",
]
