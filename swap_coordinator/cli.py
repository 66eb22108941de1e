"""`tandem swap ...`: drive and inspect atomic swaps.

Keys are named, from a keystore directory (--keys DIR or TANDEM_KEYS, files NAME.pem),
never given raw. `--json` prints one JSON document on stdout; progress goes to stderr.
`wait` and `run` exit 0 when committed, 3 when aborted (or expired unordered), 4 when
still pending at their own timeout; 1 is any other error, 5 an audit that found problems.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import grpc
import typer

from rollup_client.protocol import swap
from rollup_client.protocol.errors import InvalidArgument, TandemError
from rollup_client.protocol.genesis import Genesis
from rollup_client.rpc import tls_files
from rollup_client.rpc.cli import TlsCa, TlsCert, TlsKey
from rollup_client.wire import swap_pb2 as pb
from swap_coordinator import convert
from swap_coordinator.audit import audit as run_audit
from swap_coordinator.client import SwapClient
from swap_coordinator.keystore import Keystore
from swap_coordinator.terminal import (
    EXIT_AUDIT,
    EXIT_ERROR,
    describe,
    err,
    exit_for,
    follow,
)

swap_app = typer.Typer(help="Propose, sign, follow and audit atomic swaps.", no_args_is_help=True)

Coord = Annotated[
    str, typer.Option("--coordinator", envvar="TANDEM_COORDINATOR", help="Coordinator HOST:PORT")
]
Keys = Annotated[
    Path | None, typer.Option("--keys", envvar="TANDEM_KEYS", help="Keystore dir of NAME.pem")
]
JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout")]
CallTimeout = Annotated[float, typer.Option("--call-timeout", help="Seconds per RPC")]
LegsOpt = Annotated[
    list[str],
    typer.Option("--leg", help="ROLLUP:FROM:TO:AMOUNT:ASSET (FROM/TO: key name or hex key)"),
]
Sequencer = Annotated[
    str, typer.Option("--sequencer", envvar="TANDEM_SEQUENCER", help="Sequencer HOST:PORT")
]
GenesisOpt = Annotated[Path, typer.Option("--genesis", envvar="TANDEM_GENESIS")]


def _creds(ca: Path | None, cert: Path | None, key: Path | None) -> grpc.ChannelCredentials | None:
    tls = tls_files(ca, cert, key)
    return tls.channel_credentials() if tls else None


def _client(
    target: str, timeout: float, ca: Path | None, cert: Path | None, key: Path | None
) -> SwapClient:
    return SwapClient(target, timeout=timeout, credentials=_creds(ca, cert, key))


def fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code)


@contextmanager
def _errors() -> Iterator[None]:
    """Library errors become one line on stderr and exit 1."""
    try:
        yield
    except TandemError as exc:
        raise fail(str(exc)) from None


def _emit(doc: dict[str, Any], as_json: bool, human: Callable[[], None]) -> None:
    if as_json:
        typer.echo(json.dumps(doc, sort_keys=True))
    else:
        human()


def parse_leg(text: str, keystore: Keystore) -> swap.Leg:
    """ROLLUP:FROM:TO:AMOUNT:ASSET with parties as keystore names or hex public keys."""
    parts = text.split(":")
    if len(parts) != 5:
        raise InvalidArgument(f"leg {text!r}: expected ROLLUP:FROM:TO:AMOUNT:ASSET")
    rollup, src, dst, amount, asset = parts
    try:
        n = int(amount)
    except ValueError:
        raise InvalidArgument(f"leg {text!r}: amount {amount!r} is not an integer") from None
    if not 0 < n < 2**64:
        raise InvalidArgument(f"leg {text!r}: amount must be a positive integer")
    return swap.Leg(rollup, keystore.public(src), keystore.public(dst), asset, n)


def _sid(text: str) -> bytes:
    try:
        sid = bytes.fromhex(text)
    except ValueError:
        sid = b""
    if len(sid) != 32:
        raise InvalidArgument(f"swap id {text!r} is not 64 hex digits")
    return sid


def _sign_all(
    client: SwapClient, resp: pb.ProposeResponse, keystore: Keystore, names: list[str]
) -> pb.SwapStatus:
    status = resp.status
    for name in names:
        k = keystore.load(name)
        status = client.sign(resp.swap_id, k.public, k.sign(resp.signing_bytes))
    return status


@swap_app.command()
def propose(
    leg: LegsOpt,
    coordinator: Coord = "127.0.0.1:7300",
    timeout: Annotated[float, typer.Option(help="Deadline as seconds of log time from now")] = 0.0,
    deadline_ms: Annotated[int, typer.Option(help="Absolute deadline in log time (ms)")] = 0,
    nonce: Annotated[str, typer.Option(help="Hex nonce (same terms + nonce = same swap)")] = "",
    sign_as: Annotated[list[str] | None, typer.Option(help="Also sign as these keys")] = None,
    keys: Keys = None,
    json_out: JsonOut = False,
    call_timeout: CallTimeout = 10.0,
    tls_ca: TlsCa = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
) -> None:
    """Propose terms; prints the swap id and the deadline in log time."""
    with _errors(), _client(coordinator, call_timeout, tls_ca, tls_cert, tls_key) as client:
        ks = Keystore(keys)
        legs = [parse_leg(t, ks) for t in leg]
        if timeout < 0 or deadline_ms < 0:
            raise InvalidArgument("--timeout and --deadline-ms cannot be negative")
        resp = client.propose(
            legs, timeout_ms=int(timeout * 1000), deadline_ms=deadline_ms, nonce=_hex(nonce)
        )
        status = _sign_all(client, resp, ks, sign_as or [])
        doc = {
            **convert.status_json(status, ks.names()),
            "payers": [p.hex() for p in resp.payers],
            "signing_bytes": resp.signing_bytes.hex(),
        }
        _emit(doc, json_out, lambda: describe(status, ks.names()))


def _hex(text: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise InvalidArgument(f"{text!r} is not hex") from None


@swap_app.command()
def sign(
    swap_id: Annotated[str, typer.Argument(help="Swap id (hex)")],
    key: Annotated[str, typer.Option("--key", help="Keystore name of a payer")],
    coordinator: Coord = "127.0.0.1:7300",
    keys: Keys = None,
    json_out: JsonOut = False,
    call_timeout: CallTimeout = 10.0,
    tls_ca: TlsCa = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
) -> None:
    """Add one payer's signature (made locally, over the bytes the coordinator returns)."""
    with _errors(), _client(coordinator, call_timeout, tls_ca, tls_cert, tls_key) as client:
        ks = Keystore(keys)
        k = ks.load(key)
        sid = _sid(swap_id)
        current = client.get(sid)
        intent = swap.Intent(
            tuple(convert.leg_from_pb(ls.leg) for ls in current.legs),
            current.deadline_ms,
            current.nonce,
        )
        if intent.swap_id != sid:
            raise InvalidArgument("the coordinator's terms do not hash to this swap id")
        status = client.sign(sid, k.public, k.sign(intent.signing_bytes()))
        names = ks.names()
        _emit(convert.status_json(status, names), json_out, lambda: describe(status, names))


@swap_app.command()
def status(
    swap_id: Annotated[str, typer.Argument(help="Swap id (hex)")],
    watch: Annotated[bool, typer.Option(help="Follow changes until the swap is final")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to watch at most")] = 60.0,
    coordinator: Coord = "127.0.0.1:7300",
    keys: Keys = None,
    json_out: JsonOut = False,
    call_timeout: CallTimeout = 10.0,
    tls_ca: TlsCa = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
) -> None:
    """Per-leg lock and vote, the intent's position, log time left, the decision."""
    with _errors(), _client(coordinator, call_timeout, tls_ca, tls_cert, tls_key) as client:
        names = Keystore(keys).names()
        sid = _sid(swap_id)
        s = follow(client, sid, timeout) if watch else client.get(sid)
        _emit(convert.status_json(s, names), json_out, lambda: describe(s, names))


@swap_app.command()
def wait(
    swap_id: Annotated[str, typer.Argument(help="Swap id (hex)")],
    timeout: Annotated[float, typer.Option(help="Seconds to wait at most")] = 60.0,
    coordinator: Coord = "127.0.0.1:7300",
    keys: Keys = None,
    json_out: JsonOut = False,
    call_timeout: CallTimeout = 10.0,
    tls_ca: TlsCa = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
) -> None:
    """Wait for the decision: exit 0 committed, 3 aborted, 4 still pending at --timeout."""
    with _errors(), _client(coordinator, call_timeout, tls_ca, tls_cert, tls_key) as client:
        names = Keystore(keys).names()
        s = follow(client, _sid(swap_id), timeout)
    _emit(convert.status_json(s, names), json_out, lambda: describe(s, names))
    raise typer.Exit(exit_for(s))


@swap_app.command("list")
def list_swaps(
    state: Annotated[
        str | None, typer.Option(help="proposed|submitted|ordered|committed|aborted|expired")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many")] = 100,
    coordinator: Coord = "127.0.0.1:7300",
    json_out: JsonOut = False,
    call_timeout: CallTimeout = 10.0,
    tls_ca: TlsCa = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
) -> None:
    """Swaps known to the coordinator, newest first."""
    by_name = {v: k for k, v in convert.STATE_NAMES.items()}
    if state is not None and state not in by_name:
        raise fail(f"unknown state {state!r}: use one of {', '.join(by_name)}")
    with _errors(), _client(coordinator, call_timeout, tls_ca, tls_cert, tls_key) as client:
        swaps = client.list(by_name[state] if state else pb.SWAP_STATE_UNSPECIFIED, limit)
    docs = [convert.status_json(s) for s in swaps]

    def human() -> None:
        for d in docs:
            typer.echo(f"{d['swap_id']} {d['state']:<9} deadline {d['deadline_ms']}")

    _emit({"swaps": docs}, json_out, human)


def _rollup_map(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        for part in filter(None, item.split(",")):
            rollup, sep, target = part.partition("=")
            if not sep or not target:
                raise InvalidArgument(f"--rollup {part!r}: expected ROLLUP=HOST:PORT")
            out[rollup] = target
    return out


@swap_app.command()
def audit(
    swap_id: Annotated[str, typer.Argument(help="Swap id (hex)")],
    sequencer: Sequencer,
    genesis: GenesisOpt,
    rollup: Annotated[
        list[str] | None,
        typer.Option(
            "--rollup", envvar="TANDEM_ROLLUPS", help="ROLLUP=HOST:PORT of a node to check"
        ),
    ] = None,
    json_out: JsonOut = False,
    call_timeout: CallTimeout = 30.0,
    tls_ca: TlsCa = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
) -> None:
    """Recompute the decision from the raw log (no coordinator) and check rollups' escrow."""
    with _errors():
        g = Genesis.load(genesis)
        result = run_audit(
            _sid(swap_id),
            g,
            sequencer,
            _rollup_map(rollup or []),
            call_timeout,
            _creds(tls_ca, tls_cert, tls_key),
        )
    doc = result.to_json()

    def human() -> None:
        pos = doc["decision_position"]
        where = f" at {pos['height']}:{pos['index']}" if pos else ""
        typer.echo(f"{doc['swap_id']} {doc['outcome']}{where} ({doc['reason'] or 'undecided'})")
        for r, row in doc["rollups"].items():
            typer.echo(f"  {r}: vote={row['vote']} escrow check={row.get('check', row['escrow'])}")
        for p in doc["problems"]:
            typer.echo(f"  PROBLEM: {p}")

    _emit(doc, json_out, human)
    if result.problems:
        raise typer.Exit(EXIT_AUDIT)


@swap_app.command()
def run(
    leg: LegsOpt,
    timeout: Annotated[float, typer.Option(help="Deadline as seconds of log time from now")],
    wait_timeout: Annotated[
        float | None, typer.Option(help="Seconds to wait for the decision (default timeout + 10)")
    ] = None,
    coordinator: Coord = "127.0.0.1:7300",
    keys: Keys = None,
    json_out: JsonOut = False,
    call_timeout: CallTimeout = 10.0,
    tls_ca: TlsCa = None,
    tls_cert: TlsCert = None,
    tls_key: TlsKey = None,
) -> None:
    """Propose, sign with every payer's key from the keystore, submit, and wait."""
    with _errors(), _client(coordinator, call_timeout, tls_ca, tls_cert, tls_key) as client:
        ks = Keystore(keys)
        legs = [parse_leg(t, ks) for t in leg]
        mine = ks.all()
        payers = swap.Intent(tuple(legs), 1, b"").payers()
        absent = [p.hex() for p in payers if p not in mine]
        if absent:
            raise InvalidArgument(f"the keystore lacks payers {absent}: use propose and sign")
        if timeout <= 0:
            raise InvalidArgument("--timeout must be positive")
        resp = client.propose(legs, timeout_ms=int(timeout * 1000))
        _sign_all(client, resp, ks, [mine[p][0] for p in payers])
        s = follow(client, resp.swap_id, wait_timeout if wait_timeout else timeout + 10)
    names = ks.names()
    _emit(convert.status_json(s, names), json_out, lambda: describe(s, names))
    raise typer.Exit(exit_for(s))
