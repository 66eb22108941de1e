"""Results on disk: one JSON document, a markdown table and PNG charts per benchmark."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

Cell = str | float | int | bool | None


@dataclass(frozen=True)
class Chart:
    """Grouped bars: one group per key of `groups`, one bar per system inside each."""

    title: str
    ylabel: str
    groups: Mapping[str, Mapping[str, float | None]]
    log_scale: bool = False


@dataclass
class Report:
    """What one benchmark measured: the JSON document, its table rows and its charts."""

    name: str
    doc: dict[str, Any]
    rows: list[dict[str, Cell]] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # Why Tandem's own figures are missing or suspect; the CLI exits 1 when non-empty.
    problems: list[str] = field(default_factory=list)


def machine(workdir: Path) -> dict[str, Any]:
    """What a reader needs to compare runs: cores, Python, the disk, how busy the machine was."""
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "workdir_filesystem": filesystem(workdir),
        # Other work on the machine skews every figure: a load above the core count says so.
        "loadavg_1m_at_start": os.getloadavg()[0],
    }


def filesystem(path: Path) -> str:
    """Type of the filesystem holding `path` (fsync on tmpfs is free, so it matters)."""
    best, kind = "", "unknown"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    resolved = path.resolve()
    for line in mounts:
        fields = line.split()
        if len(fields) < 3 or len(fields[1]) <= len(best):
            continue
        if resolved.is_relative_to(fields[1]):
            best, kind = fields[1], fields[2]
    return kind


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fmt(value: Cell) -> str:
    """Table cell text: thousands separators for big numbers, 3 significant digits else."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    return value


def markdown(report: Report) -> str:
    """The report as a markdown section: params, a table of rows, notes."""
    lines = [f"## {report.name}", ""]
    params = report.doc.get("params", {})
    if params:
        lines += [", ".join(f"{k}={v}" for k, v in params.items()), ""]
    if report.rows:
        cols = list(dict.fromkeys(k for row in report.rows for k in row))
        lines.append("| " + " | ".join(cols) + " |")
        lines.append("|" + "|".join(" --- " for _ in cols) + "|")
        for row in report.rows:
            lines.append("| " + " | ".join(fmt(row.get(c)) for c in cols) + " |")
        lines.append("")
    lines += [f"- {n}" for n in report.notes]
    lines += [f"- PROBLEM: {p}" for p in report.problems]
    return "\n".join(lines).rstrip() + "\n"


def draw(charts: list[Chart], path: Path) -> None:
    """All charts of one benchmark side by side in one PNG (missing values are skipped)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(charts), figsize=(6 * len(charts), 4.5), squeeze=False)
    for ax, chart in zip(axes[0], charts, strict=True):
        systems = list(dict.fromkeys(s for g in chart.groups.values() for s in g))
        width = 0.8 / max(1, len(systems))
        for i, system in enumerate(systems):
            xs, ys = [], []
            for j, group in enumerate(chart.groups.values()):
                value = group.get(system)
                if value is not None:
                    xs.append(j + (i - (len(systems) - 1) / 2) * width)
                    ys.append(value)
            bars = ax.bar(xs, ys, width, label=system)
            ax.bar_label(bars, labels=[fmt(y) for y in ys], fontsize="x-small")
        ax.set_xticks(range(len(chart.groups)), list(chart.groups))
        ax.set_title(chart.title)
        ax.set_ylabel(chart.ylabel)
        if chart.log_scale:
            ax.set_yscale("log")
        ax.legend(fontsize="small")
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(report: Report, out_dir: Path) -> list[Path]:
    """Write NAME.json, NAME.md and (when there are charts) NAME.png into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{report.name}.json", out_dir / f"{report.name}.md"]
    paths[0].write_text(json.dumps(report.doc, indent=2, sort_keys=True) + "\n")
    paths[1].write_text(markdown(report))
    if report.charts:
        paths.append(out_dir / f"{report.name}.png")
        draw(report.charts, paths[-1])
    return paths
