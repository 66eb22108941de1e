"""One overload client process: threads submitting signed batches as fast as they can.

    python tests/reliability/flood.py LISTEN KEY_PEM CHAIN_ID SECONDS THREADS BATCH TAG

Prints one JSON document: calls per status code and the latencies (seconds) of the
acknowledged calls, so the test can check backpressure and the admitted latency.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import grpc

from rollup_client.protocol import codec
from rollup_client.protocol.keys import SigningKey
from rollup_client.wire import sequencer_pb2 as pb
from rollup_client.wire import sequencer_pb2_grpc as pb_grpc

CALL_TIMEOUT_S = 5.0


def flood(
    listen: str, key: SigningKey, chain: str, seconds: float, threads: int, batch: int, tag: str
) -> dict[str, object]:
    codes: dict[str, int] = {}
    latencies: list[float] = []
    lock = threading.Lock()
    end = time.monotonic() + seconds

    def run(n: int) -> None:
        with grpc.insecure_channel(listen) as channel:
            stub = pb_grpc.SequencerServiceStub(channel)
            seq = 0
            while time.monotonic() < end:
                items = [("alpha", f"{tag}-{n}-{seq}-{i}".encode()) for i in range(batch)]
                seq += 1
                ids = [codec.entry_id(ns, d) for ns, d in items]
                req = pb.SubmitBatchRequest(
                    client_key=key.public,
                    entries=[pb.Entry(namespace=ns, data=d) for ns, d in items],
                    signature=key.sign(codec.batch_digest(chain, ids, False)),
                )
                t0 = time.monotonic()
                try:
                    stub.SubmitBatch(req, timeout=CALL_TIMEOUT_S)
                    code = "OK"
                except grpc.RpcError as exc:
                    code = exc.code().name if isinstance(exc, grpc.Call) else "?"
                took = time.monotonic() - t0
                with lock:
                    codes[code] = codes.get(code, 0) + 1
                    if code == "OK":
                        latencies.append(took)

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return {"codes": codes, "latencies": latencies}


def main(argv: list[str]) -> None:
    listen, pem, chain, seconds, threads, batch, tag = argv
    key = SigningKey.load(Path(pem))
    doc = flood(listen, key, chain, float(seconds), int(threads), int(batch), tag)
    sys.stdout.write(json.dumps(doc) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
