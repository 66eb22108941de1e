"""grpc plumbing that every Tandem process shares: the server, client channels, the table
between library errors and status codes, TLS, per-thread SQLite readers for grpc's worker
threads, and the hand-written SubmitBatch wire fast path."""

from rollup_client.rpc import channels, status, submit_wire
from rollup_client.rpc.server import GrpcServer, abort, call, server_options
from rollup_client.rpc.sqlite_threads import PerThread
from rollup_client.rpc.tls import TlsFiles, tls_files

__all__ = [
    "GrpcServer",
    "PerThread",
    "TlsFiles",
    "abort",
    "call",
    "channels",
    "server_options",
    "status",
    "submit_wire",
    "tls_files",
]
