"""grpc plumbing that every Tandem process shares: the server, client channels, the table
between library errors and status codes, TLS, per-thread SQLite readers for grpc's worker
threads, the hand-written wire bytes of the hot paths and the one reader of submit
requests, what each process reports (its event log, the endpoints it serves), and what
their command lines share (`cli`)."""

from rollup_client.rpc import channels, config_file, status, submit_reader, wire_bytes
from rollup_client.rpc.events import Endpoints, EventLog
from rollup_client.rpc.server import GrpcServer, abort, call, server_options
from rollup_client.rpc.sqlite_threads import PerThread
from rollup_client.rpc.tls import TlsFiles, tls_files

# `cli` (the --tls-* options and the error rule of every command) is listed but not imported
# here: it loads typer, which the library itself does not need.
__all__ = [
    "Endpoints",
    "EventLog",
    "GrpcServer",
    "PerThread",
    "TlsFiles",
    "abort",
    "call",
    "channels",
    "cli",
    "config_file",
    "server_options",
    "status",
    "submit_reader",
    "tls_files",
    "wire_bytes",
]
