"""Regenerate rollup_client/wire from proto/tandem/v1/*.proto.

Run: python proto/generate.py  (tests/test_wire_fresh.py fails when the output is stale).
Output is flat in rollup_client/wire with imports rewritten to that package, because no
top-level package may be named after the proto path.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
WIRE = ROOT / "rollup_client" / "wire"
IMPORT = re.compile(r"^from tandem\.v1 import (\w+_pb2)", re.MULTILINE)


def generate(out: Path) -> None:
    """Write the generated modules for every .proto file into `out`."""
    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))
    with tempfile.TemporaryDirectory() as tmp:
        well_known = Path(protoc.__file__).parent / "_proto"
        args = [
            "grpc_tools.protoc",
            f"-I{PROTO_DIR}",
            f"-I{well_known}",
            f"--python_out={tmp}",
            f"--mypy_out={tmp}",
            f"--grpc_python_out={tmp}",
            f"--mypy_grpc_out={tmp}",
            *protos,
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
        out.mkdir(parents=True, exist_ok=True)
        for f in sorted((Path(tmp) / "tandem" / "v1").iterdir()):
            text = IMPORT.sub(r"from rollup_client.wire import \1", f.read_text())
            (out / f.name).write_text(text)


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
