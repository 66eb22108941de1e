"""`python -m deploy` is the `tandem` command; the testnet starts its processes this way."""

from deploy.cli import app

app(prog_name="tandem")
