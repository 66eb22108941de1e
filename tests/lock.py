"""requirements.lock as data: the exact version of every dependency, for the tests that check it."""

from __future__ import annotations

from pathlib import Path

from packaging.requirements import Requirement

LOCK = Path(__file__).resolve().parent.parent / "requirements.lock"


def locked_versions() -> dict[str, str]:
    """Locked version by normalised name, for the entries whose markers hold on this Python."""
    versions: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        if not line or line[0] in "# -":
            continue
        req = Requirement(line)
        if req.marker is None or req.marker.evaluate():
            (spec,) = req.specifier
            assert spec.operator == "==", f"the lock pins exactly: {line}"
            versions[normalise(req.name)] = spec.version
    return versions


def normalise(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")
