"""Private network namespaces for one test: one per "host", joined by veth pairs to a bridge.

Everything lives in namespaces the test creates (the bridge too), so no address or route
is ever added to the machine's own network; deleting the namespaces removes it all.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

SUBNET = "10.231.7"
IP_TIMEOUT_S = 10.0


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=IP_TIMEOUT_S)


def unavailable_reason() -> str | None:
    """Why namespaces cannot be made here, or None when they can."""
    if shutil.which("ip") is None:
        return "the `ip` tool (iproute2) is not installed"
    if os.geteuid() != 0:
        return "creating network namespaces needs root"
    probe = f"tnprobe{secrets.token_hex(3)}"
    try:
        _ip("netns", "add", probe)
    except subprocess.CalledProcessError as exc:
        return f"`ip netns add` failed: {exc.stderr.decode().strip()}"
    _ip("netns", "del", probe)
    return None


@dataclass(frozen=True)
class Host:
    netns: str
    address: str


@contextmanager
def lab(names: list[str]) -> Iterator[dict[str, Host]]:
    """A namespace per name with its own address, all on one bridge; removed on exit."""
    tag = secrets.token_hex(2)
    hub = f"tn{tag}-hub"
    made: list[str] = []
    try:
        _ip("netns", "add", hub)
        made.append(hub)
        _ip("-n", hub, "link", "add", "br0", "type", "bridge")
        _ip("-n", hub, "link", "set", "br0", "up")
        hosts = {}
        for i, name in enumerate(names, start=2):
            ns = f"tn{tag}-{name}"
            _ip("netns", "add", ns)
            made.append(ns)
            inner, outer = f"v{tag}{i}a", f"v{tag}{i}b"
            _ip("-n", ns, "link", "add", inner, "type", "veth", "peer", "name", outer, "netns", hub)
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "addr", "add", f"{SUBNET}.{i}/24", "dev", inner)
            _ip("-n", ns, "link", "set", inner, "up")
            _ip("-n", hub, "link", "set", outer, "master", "br0")
            _ip("-n", hub, "link", "set", outer, "up")
            hosts[name] = Host(ns, f"{SUBNET}.{i}")
        yield hosts
    finally:
        for ns in reversed(made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=IP_TIMEOUT_S)
