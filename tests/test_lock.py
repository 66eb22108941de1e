"""The lock is complete and is what is installed: CI tests the versions users get from it."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from tests.lock import locked_versions, normalise

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _closure(extras: set[str]) -> set[str]:
    """Every distribution `tandem[extras]` needs on this Python, by normalised name."""
    seen: set[str] = set()
    todo: list[tuple[str, set[str]]] = [("tandem", extras)]
    while todo:
        name, wanted = todo.pop()
        for line in metadata.requires(name) or []:
            req = Requirement(line)
            envs = [{"extra": e} for e in wanted] or [{"extra": ""}]
            if req.marker is not None and not any(req.marker.evaluate(env) for env in envs):
                continue
            dep = normalise(req.name)
            if dep == "tandem":
                todo.append(("tandem", set(req.extras)))
            elif dep not in seen:
                seen.add(dep)
                todo.append((dep, set(req.extras)))
    return seen


def test_every_needed_distribution_is_installed_at_its_locked_version() -> None:
    locked = locked_versions()
    needed = _closure({"test", "bench"})
    missing = sorted(needed - locked.keys())
    assert not missing, f"not in requirements.lock: {missing}: run deploy/lock.sh"
    wrong = {
        name: (metadata.version(name), locked[name])
        for name in needed
        if metadata.version(name) != locked[name]
    }
    assert not wrong, f"installed != locked (installed, locked): {wrong}"


def test_the_build_backend_is_pinned_to_the_locked_setuptools() -> None:
    (backend,) = PYPROJECT["build-system"]["requires"]
    assert backend == f"setuptools=={locked_versions()['setuptools']}"


def test_the_ranges_admit_the_generated_code() -> None:
    """The generated modules refuse older runtimes at import, so the library's floors say so."""
    wire = ROOT / "rollup_client" / "wire"
    grpc_code, proto_code = ((wire / f).read_text() for f in ("swap_pb2_grpc.py", "swap_pb2.py"))
    grpc_stamp = re.search(r"GRPC_GENERATED_VERSION = '([\d.]+)'", grpc_code)
    proto_stamp = re.search(r"Protobuf Python Version: ([\d.]+)", proto_code)
    assert grpc_stamp
    assert proto_stamp
    floors = {
        normalise(r.name): r.specifier
        for r in map(Requirement, PYPROJECT["project"]["dependencies"])
    }
    for dist, stamp in (("grpcio", grpc_stamp[1]), ("protobuf", proto_stamp[1])):
        low = [Version(s.version) for s in floors[dist] if s.operator == ">="]
        assert low, f"{dist} must be >= {stamp}, the generated code's"
        assert low[0] >= Version(stamp), f"{dist} must be >= {stamp}, the generated code's"
        assert floors[dist].contains(locked_versions()[dist])
