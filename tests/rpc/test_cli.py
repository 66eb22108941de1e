"""The commands' error rule: library errors, also inside exception groups, are one line and
exit 1; anything else among them is a bug and propagates with its traceback."""

from __future__ import annotations

import pytest
import typer

from rollup_client.protocol.errors import FailedPrecondition, InvalidArgument
from rollup_client.rpc.cli import cli_errors, tandem_errors


def test_library_errors_in_groups_become_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    group = ExceptionGroup("run", [FailedPrecondition("no key"), InvalidArgument("bad port")])
    with pytest.raises(typer.Exit) as exit_, cli_errors():
        raise ExceptionGroup("outer", [group])
    assert exit_.value.exit_code == 1
    assert capsys.readouterr().err == "error: no key; bad port\n"


def test_anything_else_among_them_propagates() -> None:
    both = ExceptionGroup("two", [InvalidArgument("a"), InvalidArgument("b")])
    mixed = ExceptionGroup("run", [both, ValueError("a bug")])
    assert tandem_errors(mixed) == []
    with pytest.raises(ExceptionGroup), cli_errors():
        raise mixed
    with pytest.raises(ValueError, match="a bug"), cli_errors():
        raise ValueError("a bug")
