"""The committed generated wire code must match proto/ (regenerate: python proto/generate.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("proto_generate", ROOT / "proto" / "generate.py")
    assert spec and spec.loader
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    gen.generate(tmp_path)
    wire = ROOT / "rollup_client" / "wire"
    fresh = {p.name: p.read_text() for p in tmp_path.iterdir()}
    committed = {p.name: p.read_text() for p in wire.glob("*_pb2*")}
    assert fresh.keys() == committed.keys(), "run: python proto/generate.py"
    stale = [n for n in fresh if fresh[n] != committed[n]]
    assert not stale, f"stale generated files {stale}: run python proto/generate.py"
