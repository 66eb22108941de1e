"""Client channels with every option written out, and calls on them from trio.

Each client (sequencer, rollup node, coordinator, tools) opens its channel here, so message
limits, keepalive and reconnect behaviour are set once, explicitly.
"""

from __future__ import annotations

from typing import Any

import grpc
import trio

from rollup_client.rpc.status import rpc_error

DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024


def channel_options(
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    *,
    ping_when_idle: bool = True,
    quick_reconnect: bool = False,
) -> list[tuple[str, int]]:
    """Explicit client channel options: bounded messages and keepalive.

    `ping_when_idle` keeps the keepalive pings going while no call is open.
    `quick_reconnect` caps the reconnect backoff at 2 s, so a restarted server is found
    again within seconds. grpc.min_reconnect_backoff_ms is deliberately left at its
    default: grpc core also uses it as the timeout of one connection attempt (TCP plus the
    HTTP/2 SETTINGS exchange), and at 100 ms a busy 2-core machine fails healthy connects
    with "timed out before receiving SETTINGS frame".
    """
    options = [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
    ]
    if ping_when_idle:
        options.append(("grpc.keepalive_permit_without_calls", 1))
    if quick_reconnect:
        options += [
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 2_000),
        ]
    return options


def open_channel(
    target: str,
    credentials: grpc.ChannelCredentials | None = None,
    *,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ping_when_idle: bool = True,
    quick_reconnect: bool = False,
) -> grpc.Channel:
    """A channel to `target` with `channel_options`: plaintext, or mutual TLS with
    `credentials`."""
    options = channel_options(
        max_message_bytes, ping_when_idle=ping_when_idle, quick_reconnect=quick_reconnect
    )
    if credentials is None:
        return grpc.insecure_channel(target, options=options)
    return grpc.secure_channel(target, credentials, options=options)


def raw_method(
    channel: grpc.Channel, service: str, name: str
) -> grpc.UnaryUnaryMultiCallable[bytes, bytes]:
    """Unary method `name` of `service` (its full name), taking and returning wire bytes."""
    return channel.unary_unary(f"/{service}/{name}")


async def call_unary(method: Any, request: Any, timeout: float, who: str) -> Any:
    """Await a grpcio unary call from trio without a thread; cancelling cancels the call.

    A failed call raises the library exception, named after `who` (the server)."""
    token = trio.lowlevel.current_trio_token()
    done = trio.Event()
    fut = method.future(request, timeout=timeout)

    def finished(_: object) -> None:
        try:
            token.run_sync_soon(done.set)
        except trio.RunFinishedError:
            return

    fut.add_done_callback(finished)
    try:
        await done.wait()
    finally:
        fut.cancel()  # a no-op once done; cancels the RPC when trio cancelled us
    try:
        return fut.result()
    except grpc.RpcError as exc:
        raise rpc_error(exc, who) from None
