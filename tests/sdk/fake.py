"""An in-process SequencerService that misbehaves on demand, for client tests.

It serves BLOCKS (12 signed blocks, each with one entry in "a" and one in "b"), built by
the library's own block builders; only here can a server lie or stall on purpose.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc

from rollup_client.protocol import codec
from rollup_client.wire import sequencer_pb2 as pb
from rollup_client.wire import sequencer_pb2_grpc as pb_grpc
from tests.sdk.chain import SEQUENCER, chain

BLOCKS = chain([[("a", bytes([h]) * 3), ("b", b"other")] for h in range(12)])


class Fake(pb_grpc.SequencerServiceServicer):
    """Serves BLOCKS; `tamper_at` corrupts that block, `drop_every` aborts streams,
    `silent_after` stops sending (without ending the stream) after that many blocks.
    Submit fails the first `fail_submits` calls with UNAVAILABLE, or with `hang_submits`
    never answers and records when the call reached it and when the client gave it up."""

    def __init__(
        self,
        tamper_at: int = -1,
        drop_every: int = 0,
        silent_after: int = 0,
        fail_submits: int = 0,
        hang_submits: bool = False,
    ) -> None:
        self.tamper_at, self.drop_every, self.silent_after = tamper_at, drop_every, silent_after
        self.fail_submits, self.hang_submits = fail_submits, hang_submits
        self.from_heights: list[int] = []
        self.submits = 0
        self.submit_started = threading.Event()
        self.submit_ended = threading.Event()
        self.stop = threading.Event()

    def Submit(self, request: pb.SubmitRequest, context: grpc.ServicerContext) -> pb.SubmitResponse:
        self.submits += 1
        if self.submits <= self.fail_submits:
            context.abort(grpc.StatusCode.UNAVAILABLE, "fake restart")
        if self.hang_submits:
            ended = threading.Event()
            if not context.add_callback(ended.set):
                ended.set()  # the call ended before this handler ran: no callback comes
            self.submit_started.set()
            while not ended.wait(0.05) and not self.stop.is_set():
                pass
            self.submit_ended.set()
        eid = codec.entry_id(request.entry.namespace, request.entry.data)
        return pb.SubmitResponse(ack=pb.EntryAck(entry_id=eid, position=pb.Position(height=5)))

    # Not served: the clients under test never call these here.
    def SubmitBatch(
        self, request: pb.SubmitBatchRequest, context: grpc.ServicerContext
    ) -> pb.SubmitBatchResponse:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "the fake serves no SubmitBatch")

    def GetBlock(
        self, request: pb.GetBlockRequest, context: grpc.ServicerContext
    ) -> pb.GetBlockResponse:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "the fake serves no GetBlock")

    def GetEntry(
        self, request: pb.GetEntryRequest, context: grpc.ServicerContext
    ) -> pb.GetEntryResponse:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "the fake serves no GetEntry")

    def Status(self, request: pb.StatusRequest, context: grpc.ServicerContext) -> pb.StatusResponse:
        head = BLOCKS[-1].header
        return pb.StatusResponse(
            chain_id="fake", height=head.height, head_hash=head.hash, sequencer_key=SEQUENCER.public
        )

    def Subscribe(
        self, request: pb.SubscribeRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.SubscribeResponse]:
        self.from_heights.append(request.from_height)
        for sent, sealed in enumerate(BLOCKS[request.from_height :], start=1):
            fb = sealed.filtered(list(request.namespaces))
            if sealed.header.height == self.tamper_at:
                fb.namespaces[0].entries[0].entry.data += b"!"
            yield pb.SubscribeResponse(block=fb)
            if self.drop_every and sent == self.drop_every:
                context.abort(grpc.StatusCode.UNAVAILABLE, "fake drop")
            if self.silent_after and sent == self.silent_after:
                while context.is_active() and not self.stop.wait(0.05):
                    pass
                return
