"""The committed wire code must match proto/ (regenerate: python proto/generate.py)."""

from __future__ import annotations

import importlib.util
import shutil
from importlib import metadata
from pathlib import Path
from types import ModuleType

import pytest

from tests.lock import locked_versions

ROOT = Path(__file__).resolve().parent.parent
WIRE = ROOT / "rollup_client" / "wire"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("proto_generate", ROOT / "proto" / "generate.py")
    assert spec
    assert spec.loader
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    return gen


def test_generated_code_means_what_proto_says() -> None:
    assert _generator().stale() == [], "stale generated code: run python proto/generate.py"


def test_an_edited_proto_makes_the_code_stale(tmp_path: Path) -> None:
    protos = tmp_path / "proto"
    shutil.copytree(ROOT / "proto", protos, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    swap = protos / "tandem" / "v1" / "swap.proto"
    text = swap.read_text()
    head, brace, tail = text.partition("message ")
    name_end = tail.index("{") + 1
    added = "\n  string added_field = 999;"
    swap.write_text(head + brace + tail[:name_end] + added + tail[name_end:])
    assert _generator().stale(protos, WIRE) == ["swap_pb2"]


def test_a_missing_module_is_stale(tmp_path: Path) -> None:
    wire = tmp_path / "wire"
    shutil.copytree(WIRE, wire)
    (wire / "rollup_pb2.py").unlink()
    assert _generator().stale(ROOT / "proto", wire) == ["rollup_pb2"]


def test_generated_text_is_what_the_locked_generator_writes(tmp_path: Path) -> None:
    locked = locked_versions()["grpcio-tools"]
    installed = metadata.version("grpcio-tools")
    if installed != locked:
        pytest.skip(f"grpcio-tools {installed} is installed, the lock has {locked}")
    _generator().generate(tmp_path)
    fresh = {p.name: p.read_text() for p in tmp_path.iterdir()}
    committed = {p.name: p.read_text() for p in WIRE.glob("*_pb2*")}
    assert fresh.keys() == committed.keys(), "run: python proto/generate.py"
    differ = [n for n in fresh if fresh[n] != committed[n]]
    assert not differ, f"generated files {differ} differ: run python proto/generate.py"
