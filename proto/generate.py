"""Regenerate rollup_client/wire from proto/**/*.proto (Tandem's tandem/v1, etcd's subset).

Run: python proto/generate.py, with grpcio-tools from requirements.lock, whose version the
generated code records (tests/test_wire_fresh.py fails when the output is stale).
Output is flat in rollup_client/wire with imports rewritten to that package, because no
top-level package may be named after the proto path.
"""

from __future__ import annotations

import ast
import re
import sys
import tempfile
from pathlib import Path

from google.protobuf import descriptor_pb2
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
WIRE = ROOT / "rollup_client" / "wire"
IMPORT = re.compile(r"^from (?:tandem\.v1|etcdserverpb) import (\w+_pb2)", re.MULTILINE)


WELL_KNOWN = Path(protoc.__file__).parent / "_proto"


def _protos(proto_dir: Path) -> list[str]:
    return sorted(str(p.relative_to(proto_dir)) for p in proto_dir.rglob("*.proto"))


def generate(out: Path) -> None:
    """Write the generated modules for every .proto file into `out`."""
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "grpc_tools.protoc",
            f"-I{PROTO_DIR}",
            f"-I{WELL_KNOWN}",
            f"--python_out={tmp}",
            f"--mypy_out={tmp}",
            f"--grpc_python_out={tmp}",
            f"--mypy_grpc_out={tmp}",
            *_protos(PROTO_DIR),
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        out.mkdir(parents=True, exist_ok=True)
        for f in sorted(p for p in Path(tmp).rglob("*") if p.is_file()):
            text = IMPORT.sub(r"from rollup_client.wire import \1", f.read_text())
            (out / f.name).write_text(text)


def _clear_json_names(message: descriptor_pb2.DescriptorProto) -> None:
    for field in message.field:
        field.ClearField("json_name")
    for nested in message.nested_type:
        _clear_json_names(nested)


def _compiled(proto_dir: Path) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    """Each .proto under `proto_dir` as protoc parses it, keyed by its generated module's name."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        args = ["protoc", f"-I{proto_dir}", f"-I{WELL_KNOWN}", f"--descriptor_set_out={out}"]
        if protoc.main([*args, *_protos(proto_dir)]) != 0:
            raise SystemExit("protoc failed")
        files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file
    for f in files:
        # protoc fills json_name for plugins; the Python generator leaves it out.
        for message in f.message_type:
            _clear_json_names(message)
    return {f"{Path(f.name).stem}_pb2": f for f in files}


def _embedded(module: Path) -> descriptor_pb2.FileDescriptorProto:
    """The descriptor a generated `*_pb2.py` registers, read from its source, not imported."""
    for node in ast.walk(ast.parse(module.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "AddSerializedFile":
            return descriptor_pb2.FileDescriptorProto.FromString(ast.literal_eval(node.args[0]))
    raise ValueError(f"{module} registers no descriptor")


def stale(proto_dir: Path = PROTO_DIR, wire: Path = WIRE) -> list[str]:
    """The generated modules in `wire` whose schema differs from `proto_dir` (missing included).

    Compares what the code means, not its text, so a generator release that only changes
    version stamps or formatting does not make the committed code stale.
    """
    compiled = _compiled(proto_dir)
    committed = {p.stem: p for p in wire.glob("*_pb2.py")}
    names = sorted(compiled.keys() | committed.keys())
    return [
        n
        for n in names
        if n not in compiled or n not in committed or _embedded(committed[n]) != compiled[n]
    ]


def main() -> None:
    for old in WIRE.glob("*_pb2*"):
        old.unlink()
    generate(WIRE)
    init = WIRE / "__init__.py"
    if not init.exists():
        init.write_text('"""Generated wire code (python proto/generate.py). Do not edit."""\n')
    print(f"generated into {WIRE}", file=sys.stderr)


if __name__ == "__main__":
    main()
