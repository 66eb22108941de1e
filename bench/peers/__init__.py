"""The systems a benchmark drives: Tandem itself and the peers it is measured against.

Each module has `start(workdir)`, a context manager that runs the server on loopback and
yields the target the workers connect to, with the server's "pid" (raising
PeerUnavailable when it cannot run here), and `connect(target, single)`, the client a
worker process drives.
"""
