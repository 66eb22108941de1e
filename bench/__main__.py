"""`python -m bench`: the same commands as `tandem bench`."""

from bench.cli import app

app(prog_name="tandem bench")
