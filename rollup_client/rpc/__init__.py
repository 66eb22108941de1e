"""grpc plumbing that every Tandem process shares: the server, TLS, per-thread SQLite
readers for grpc's worker threads, the hand-written wire bytes of the hot paths and the
one reader of submit requests."""

from rollup_client.rpc import submit_reader, wire_bytes
from rollup_client.rpc.server import GrpcServer, abort, call, server_options
from rollup_client.rpc.sqlite_threads import PerThread
from rollup_client.rpc.tls import TlsFiles, tls_files

__all__ = [
    "GrpcServer",
    "PerThread",
    "TlsFiles",
    "abort",
    "call",
    "server_options",
    "submit_reader",
    "tls_files",
    "wire_bytes",
]
