"""DESIGN.md section 1: imports point one way between the top-level packages."""

from __future__ import annotations

import ast
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


def imported_packages(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & PACKAGES


def test_imports_point_one_way() -> None:
    bad = []
    for pkg, allowed in ALLOWED.items():
        for path in sorted((ROOT / pkg).rglob("*.py")):
            for dep in imported_packages(path) - allowed - {pkg}:
                bad.append(f"{path.relative_to(ROOT)} imports {dep}")
    assert not bad, "imports against DESIGN.md section 1:\n" + "\n".join(bad)


def test_no_top_level_proto_package() -> None:
    assert not (ROOT / "proto" / "__init__.py").exists()


def test_checker_sees_a_violation(tmp_path: Path) -> None:
    f = tmp_path / "x.py"
    f.write_text("from sequencer.core import X\nimport deploy.cli\nimport os\n")
    assert imported_packages(f) == {"sequencer", "deploy"}
