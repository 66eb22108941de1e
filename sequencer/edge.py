"""The grpcio edge: a synchronous server adapting RPCs to `Handlers`.

Every library error becomes its gRPC status here, through the one table in
rollup_client.rpc.status; anything else is a bug and surfaces as INTERNAL without killing
the server.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from rollup_client.protocol.errors import TandemError
from rollup_client.rpc import GrpcServer, abort, call, submit_reader
from rollup_client.wire import sequencer_pb2 as pb
from sequencer.handlers import Handlers

# Both submit calls arrive as the same columns, read by the one reader of submit requests.
READERS = {"SubmitBatch": submit_reader.read_batch, "Submit": submit_reader.read_submit}


class SequencerServicer:
    """Thin adapter: request fields in, `Handlers` call, response out.

    The submit methods answer with wire bytes built by `Handlers` (GrpcServer sends bytes
    as they are), so it does not subclass the generated servicer, whose types say messages.
    """

    def __init__(self, handlers: Handlers) -> None:
        self.h = handlers

    def SubmitBatch(
        self, request: submit_reader.BatchFields, context: grpc.ServicerContext
    ) -> bytes:
        return call(context, lambda: self.h.submit(request, context.time_remaining()))

    def Submit(self, request: submit_reader.BatchFields, context: grpc.ServicerContext) -> bytes:
        """A SubmitBatchResponse of one ack is, byte for byte, the SubmitResponse."""
        return call(context, lambda: self.h.submit(request, context.time_remaining()))

    def GetBlock(
        self, request: pb.GetBlockRequest, context: grpc.ServicerContext
    ) -> pb.GetBlockResponse:
        blk = call(
            context,
            lambda: self.h.get_block(request.height, request.namespaces, request.all_namespaces),
        )
        return pb.GetBlockResponse(block=blk)

    def GetEntry(
        self, request: pb.GetEntryRequest, context: grpc.ServicerContext
    ) -> pb.GetEntryResponse:
        return call(context, lambda: self.h.get_entry(request.entry_id))

    def Subscribe(
        self, request: pb.SubscribeRequest, context: grpc.ServicerContext
    ) -> Iterator[bytes]:
        """Serialized SubscribeResponses, built once per block for all subscribers."""
        try:
            yield from self.h.subscribe(request.namespaces, request.from_height, context.is_active)
        except TandemError as exc:
            abort(context, exc)

    def Status(self, request: pb.StatusRequest, context: grpc.ServicerContext) -> pb.StatusResponse:
        return call(context, self.h.status)


class Edge(GrpcServer):
    """The sequencer's grpc server: plaintext, or mutual TLS when the config names the files."""

    def __init__(self, handlers: Handlers, listen: str, workers: int) -> None:
        config = handlers.config
        super().__init__(
            pb.DESCRIPTOR.services_by_name["SequencerService"],
            SequencerServicer(handlers),
            listen,
            workers=workers,
            max_message_bytes=config.limits.max_message_bytes,
            tls=config.tls,
            thread_name="seq-grpc",
            readers=READERS,
        )
