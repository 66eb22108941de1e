"""DESIGN.md section 1: imports point one way, between the top-level packages and between the
subpackages of rollup_client; protocol/ and every core.py import no I/O; code outside a
subpackage of rollup_client imports only its face (the names in its __all__)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"rollup_client", "sequencer", "swap_coordinator", "deploy", "bench"}
ALLOWED = {
    "rollup_client": set(),
    "sequencer": {"rollup_client"},
    "swap_coordinator": {"rollup_client"},
    "deploy": {"sequencer", "swap_coordinator", "rollup_client"},
    "bench": {"deploy", "sequencer", "swap_coordinator", "rollup_client"},
}
# Inside rollup_client: the subpackages each one may import besides itself.
SUBPACKAGES = {
    "protocol": {"wire"},
    "rpc": {"protocol", "wire"},
    "ledger": {"protocol", "wire"},
    "exchange": {"protocol", "wire"},
    "sdk": {"rpc", "protocol", "wire"},
    "node": {"rpc", "protocol", "sdk", "ledger", "wire"},
    "wire": set(),
}
# What protocol/ and every core.py never import, submodules included. The generated
# *_pb2_grpc modules import grpc, so they count as grpc.
FORBIDDEN = {"grpc", "trio", "sqlite3", "threading", "time", "random"}
# wire/ is generated code without an __all__: each of its modules is public.
FACELESS = {"wire"}


def imported_modules(path: Path, root: Path = ROOT) -> Iterator[tuple[str, list[str]]]:
    """Every module `path` imports with the names taken from it (none for `import m`),
    relative imports resolved against the package `path` is in under `root`."""
    package = list(path.relative_to(root).parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, []
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            yield module, [a.name for a in node.names]


def imported_packages(path: Path, root: Path = ROOT) -> set[str]:
    return {m.split(".")[0] for m, _ in imported_modules(path, root)} & PACKAGES


def imported_subpackages(path: Path, root: Path) -> set[str]:
    """The subpackages of rollup_client that `path` imports."""
    found = set()
    for module, names in imported_modules(path, root):
        parts = module.split(".")
        if parts[0] == "rollup_client":
            found |= {parts[1]} if len(parts) > 1 else set(names)
    return found


def forbidden_imports(path: Path, root: Path) -> set[str]:
    """What `path` imports of FORBIDDEN."""
    found = set()
    for module, names in imported_modules(path, root):
        if module.split(".")[0] in FORBIDDEN or module.endswith("_pb2_grpc"):
            found.add(module)
        found |= {f"{module}.{n}" for n in names if n.endswith("_pb2_grpc")}
    return found


def faces(root: Path) -> dict[str, set[str]]:
    """Each subpackage of rollup_client with the names in its __init__'s __all__."""
    out = {}
    for init in sorted((root / "rollup_client").glob("*/__init__.py")):
        for node in ast.parse(init.read_text()).body:
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
            ):
                out[init.parent.name] = set(ast.literal_eval(node.value))
    return out


def behind_faces(path: Path, root: Path, face: dict[str, set[str]]) -> list[str]:
    """What `path` imports from a subpackage of rollup_client, other than its own, that is
    not in that subpackage's __all__: a module `rollup_client.P.M` or a name `x` of
    `from rollup_client.P import x`."""
    own = path.relative_to(root).parts[:2]
    bad = []
    for module, names in imported_modules(path, root):
        parts = module.split(".")
        if parts[0] != "rollup_client" or len(parts) < 2 or parts[1] in FACELESS:
            continue
        sub, public = parts[1], face.get(parts[1], set())
        if ("rollup_client", sub) != own:
            hidden = parts[2:3] if len(parts) > 2 else names
            bad += [f"rollup_client.{sub}.{h}" for h in hidden if h not in public]
    return bad


def python_files(root: Path, *parts: str) -> list[Path]:
    return sorted(root.joinpath(*parts).rglob("*.py"))


def against_one_way(root: Path) -> list[str]:
    return [
        f"{path.relative_to(root)} imports {dep}"
        for pkg, allowed in ALLOWED.items()
        for path in python_files(root, pkg)
        for dep in sorted(imported_packages(path, root) - allowed - {pkg})
    ]


def against_the_order(root: Path) -> list[str]:
    return [
        f"{path.relative_to(root)} imports rollup_client.{dep}"
        for sub, allowed in SUBPACKAGES.items()
        for path in python_files(root, "rollup_client", sub)
        for dep in sorted(imported_subpackages(path, root) - allowed - {sub})
    ]


def pure_files(root: Path) -> list[Path]:
    """protocol/ and every core.py of the code."""
    cores = {p for pkg in PACKAGES for p in python_files(root, pkg) if p.name == "core.py"}
    return sorted(cores.union(python_files(root, "rollup_client", "protocol")))


def impure(root: Path) -> list[str]:
    return [
        f"{path.relative_to(root)} imports {m}"
        for path in pure_files(root)
        for m in sorted(forbidden_imports(path, root))
    ]


def past_faces(root: Path) -> list[str]:
    face = faces(root)
    return [
        f"{path.relative_to(root)} imports {hidden}"
        for pkg in sorted(PACKAGES)
        for path in python_files(root, pkg)
        for hidden in behind_faces(path, root, face)
    ]


def test_imports_point_one_way() -> None:
    bad = against_one_way(ROOT)
    assert not bad, "imports against DESIGN.md section 1:\n" + "\n".join(bad)


def test_subpackages_of_rollup_client_import_down_the_order() -> None:
    present = {p.parent.name for p in (ROOT / "rollup_client").glob("*/__init__.py")}
    assert present <= set(SUBPACKAGES), "a subpackage without its place in SUBPACKAGES"
    bad = against_the_order(ROOT)
    assert not bad, "imports against DESIGN.md section 1:\n" + "\n".join(bad)


def test_protocol_and_every_core_import_no_io() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in pure_files(ROOT)}
    assert {"rollup_client/protocol/errors.py", "sequencer/core.py"} <= names
    bad = impure(ROOT)
    assert not bad, "pure code (DESIGN.md sections 1 and 2) imports I/O:\n" + "\n".join(bad)


def test_code_outside_a_subpackage_imports_its_face() -> None:
    assert {"protocol", "rpc", "sdk", "node", "ledger"} <= set(faces(ROOT))
    bad = past_faces(ROOT)
    assert not bad, "imports past a subpackage's __all__:\n" + "\n".join(bad)


def test_no_top_level_proto_package() -> None:
    assert not (ROOT / "proto" / "__init__.py").exists()


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_checker_sees_a_violation(tmp_path: Path) -> None:
    f = tmp_path / "x.py"
    f.write_text("from sequencer.core import X\nimport deploy.cli\nimport os\n")
    assert imported_packages(f, tmp_path) == {"sequencer", "deploy"}
    root = write(tmp_path / "tree", {"rollup_client/x.py": "from ..sequencer import core\n"})
    assert against_one_way(root) == ["rollup_client/x.py imports sequencer"]


def test_order_checker_sees_a_violation(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "rollup_client/protocol/a.py": "from rollup_client.rpc import status\n",
            "rollup_client/rpc/b.py": "from rollup_client import sdk, protocol\n",
            "rollup_client/sdk/c.py": "from ..node import serve\nimport rollup_client.wire.x_pb2\n",
            "rollup_client/node/d.py": "from rollup_client.sdk.core import ClientCore\n",
        },
    )
    assert against_the_order(root) == [
        "rollup_client/protocol/a.py imports rollup_client.rpc",
        "rollup_client/rpc/b.py imports rollup_client.sdk",
        "rollup_client/sdk/c.py imports rollup_client.node",
    ]


def test_purity_checker_sees_a_violation(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "rollup_client/protocol/a.py": "import time\nfrom rollup_client.wire import x_pb2\n",
            "rollup_client/protocol/b.py": "from rollup_client.wire import x_pb2_grpc\n",
            "rollup_client/sdk/core.py": "from grpc.aio import Channel\n",
            "sequencer/core.py": "import sqlite3, threading\nfrom random import random\n",
            "swap_coordinator/core.py": "import trio.lowlevel\n",
            "sequencer/shell.py": "import time, trio\n",
        },
    )
    assert impure(root) == [
        "rollup_client/protocol/a.py imports time",
        "rollup_client/protocol/b.py imports rollup_client.wire.x_pb2_grpc",
        "rollup_client/sdk/core.py imports grpc.aio",
        "sequencer/core.py imports random",
        "sequencer/core.py imports sqlite3",
        "sequencer/core.py imports threading",
        "swap_coordinator/core.py imports trio.lowlevel",
    ]


def test_face_checker_sees_a_violation(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "rollup_client/sdk/__init__.py": '__all__ = ["Ack", "core"]\n',
            "rollup_client/sdk/core.py": "",
            "rollup_client/sdk/inside.py": "from rollup_client.sdk.rollup import channel\n",
            "rollup_client/node/a.py": (
                "from rollup_client.sdk.rollup import RollupClient\n"
                "from rollup_client.sdk.core import Ack\n"
                "from rollup_client.wire import x_pb2\n"
            ),
            "deploy/b.py": (
                "from rollup_client.sdk import Ack, Hidden\nimport rollup_client.sdk.c\n"
            ),
        },
    )
    assert past_faces(root) == [
        "deploy/b.py imports rollup_client.sdk.Hidden",
        "deploy/b.py imports rollup_client.sdk.c",
        "rollup_client/node/a.py imports rollup_client.sdk.rollup",
    ]
