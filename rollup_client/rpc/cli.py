"""What the command line of every process shares: the --tls-* options, and the one rule
that turns the library's errors into `error: ...` and exit code 1 instead of a traceback.

Here, beside `tls_files` and below every package with a command (node, sequencer,
coordinator, deploy), so that each of them can import it; not imported by
`rollup_client.rpc` itself, because it loads typer, which the library does not need.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from rollup_client.protocol.errors import TandemError

TlsCa = Annotated[
    Path | None, typer.Option(envvar="TANDEM_TLS_CA", help="CA certificate (PEM): mutual TLS")
]
TlsCert = Annotated[
    Path | None, typer.Option(envvar="TANDEM_TLS_CERT", help="This process's certificate (PEM)")
]
TlsKey = Annotated[
    Path | None, typer.Option(envvar="TANDEM_TLS_KEY", help="This process's TLS key (PEM)")
]


def tandem_errors(exc: BaseException) -> list[TandemError]:
    """The Tandem errors behind `exc`, through trio's exception groups; [] when anything
    else is among them (that is a bug, and its traceback must show)."""
    if isinstance(exc, TandemError):
        return [exc]
    if isinstance(exc, BaseExceptionGroup):
        found = [tandem_errors(sub) for sub in exc.exceptions]
        return [e for errors in found for e in errors] if all(found) else []
    return []


@contextlib.contextmanager
def cli_errors() -> Iterator[None]:
    """Tandem errors, alone or in exception groups, become one `error: ...` line on stderr
    and exit code 1; anything else propagates."""
    try:
        yield
    except (TandemError, BaseExceptionGroup) as exc:
        errors = tandem_errors(exc)
        if not errors:
            raise
        typer.echo("error: " + "; ".join(str(e) for e in errors), err=True)
        raise typer.Exit(1) from None
