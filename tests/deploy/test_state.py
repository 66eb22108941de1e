"""testnet.json: what `up` records and every later command reads back."""

from __future__ import annotations

import json
from pathlib import Path

from deploy import state
from deploy.layout import Layout


def test_a_state_file_of_the_previous_release_still_loads(tmp_path: Path) -> None:
    """`down` must find a testnet started before supervisor_pid was retired."""
    lay = Layout(tmp_path)
    record = {
        "name": "sequencer",
        "role": "sequencer",
        "pid": 1,
        "start_time": 1,
        "listen": "127.0.0.1:1",
        "log": "l",
        "data_dir": "d",
        "key": "k",
        "argv": ["x"],
    }
    doc = {"chain_id": "c", "genesis": "g", "keys_dir": "k", "accounts": {}}
    lay.state.write_text(json.dumps({**doc, "processes": [record], "supervisor_pid": 7}))
    loaded = state.load(lay)
    assert loaded is not None
    assert loaded.process("sequencer").pid == 1
