#!/usr/bin/env python3
"""A lean gRPC Detect backend that answers every call after a fixed delay, for the
gateway's scalability test (Tests/interop/test_gateway_rest.py).

    .venv/bin/python Tests/interop/delay_backend.py --port PORT --delay 0.05

Why not examples/python/server.py --delay 0.05: grpcio's synchronous server costs
about half a millisecond of CPU per call, so on a 2-core machine it tops out near
1,300-1,800 calls/s whatever its thread pool (measured with h2load, 256 concurrent
streams, delay 50 ms: 1,300 calls/s; the h2 (python-hyper) state machine is no faster).
The test needs a backend that sustains 256 / 0.05 s = 5,120 calls/s, so that what
is measured is the gateway. This one is asyncio on a single thread with HTTP/2
framing done by hand: the delay is a timer, not a blocked thread; response header
blocks are precomputed (stateless HPACK: indexed static entries and literals without
indexing); only request header blocks go through the hpack decoder; answers are
cached by request bytes (detection is deterministic).

It speaks just enough gRPC over h2c (prior knowledge) for a well-behaved client:
  /pb.Outliers/Detect             the article's rule on the values (numpy), after --delay
  /grpc.health.v1.Health/Check    SERVING, at once
  anything else                   grpc-status 12 (UNIMPLEMENTED), Trailers-Only
No compression, no deadlines, no reflection, no server push; answers of at most the
client's initial stream window. Prints "delay backend ready on port N"; with
--count-calls also "detect call" as each Detect request arrives and "detect answered"
as its answer goes (a test tells calls in flight on this backend from those done).
"""

import argparse
import asyncio
import collections
import os
import signal
import sys

import hpack
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
PROTOS = os.path.normpath(os.path.join(HERE, "..", "..", "Protos"))

COUNT_CALLS = False  # --count-calls
DETECT = "/pb.Outliers/Detect"
HEALTH = "/grpc.health.v1.Health/Check"
HEALTH_SERVING = b"\x08\x01"  # HealthCheckResponse{status: SERVING}

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM = ACK = 0x1
END_HEADERS, PADDED, PRIORITY_FLAG = 0x4, 0x8, 0x20
MAX_WINDOW = (1 << 31) - 1
MAX_FRAME = 16384


def load_stubs():
    try:
        import outliers_pb2  # noqa: F401
    except ImportError:
        import tempfile
        import grpc_tools
        from grpc_tools import protoc
        out = tempfile.mkdtemp(prefix="delay-backend-stubs-")
        well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
        rc = protoc.main(["protoc", f"-I{PROTOS}", f"-I{well_known}", f"--python_out={out}",
                          os.path.join(PROTOS, "outliers.proto")])
        if rc != 0:
            sys.exit(f"protoc failed ({rc}) on {PROTOS}/outliers.proto")
        sys.path.insert(0, out)
    import outliers_pb2
    return outliers_pb2


pb = load_stubs()


def frame(kind, flags, sid, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes((kind, flags)) + sid.to_bytes(4, "big") + payload


def hpack_int(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first | value,))
    out = bytearray((first | limit,))
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def literal(name, value):
    """A header as a literal without indexing, new name, no Huffman: no table state."""
    name, value = name.encode(), value.encode()
    return b"\x00" + hpack_int(len(name), 7) + name + hpack_int(len(value), 7) + value


# :status 200 is entry 8 of the static table; content-type is name entry 31.
RESPONSE_HEADERS = b"\x88" + hpack_int(31, 4) + hpack_int(16, 7) + b"application/grpc"
OK_TRAILERS = literal("grpc-status", "0")


def grpc_frame(message):
    return b"\x00" + len(message).to_bytes(4, "big") + message


def detect(body):
    """A gRPC-framed OutliersRequest -> (grpc-status, message, framed OutliersResponse)."""
    if len(body) < 5 or body[0] != 0 or int.from_bytes(body[1:5], "big") != len(body) - 5:
        return 13, "bad gRPC framing", b""
    try:
        request = pb.OutliersRequest.FromString(body[5:])
    except Exception as exc:  # noqa: BLE001 - any decode error is the caller's
        return 13, f"cannot decode pb.OutliersRequest: {exc}", b""
    data = np.fromiter((m.value for m in request.metrics), dtype="float64",
                       count=len(request.metrics))
    if data.size and not np.isfinite(data).all():
        index = int(np.argmin(np.isfinite(data)))
        return 3, f"metrics[{index}].value: not a finite number", b""
    indices = np.where(np.abs(data - data.mean()) > 2 * data.std())[0] if data.size else []
    return 0, "", grpc_frame(pb.OutliersResponse(indices=[int(i) for i in indices]).SerializeToString())


class Connection(asyncio.Protocol):
    cache = collections.OrderedDict()  # request bytes -> detect() result, shared

    def __init__(self, delay):
        self.delay = delay
        self.transport = None
        self.buf = bytearray()
        self.out = bytearray()
        self.preface_seen = False
        self.decoder = hpack.Decoder()
        self.streams = {}  # stream id -> [path, bytearray body]
        self.block = None  # [stream id, bytearray, end_stream] while CONTINUATIONs come
        self.send_window = 65535  # connection-level, ours to spend
        self.peer_stream_window = 65535
        self.pending = collections.deque()  # (sid, frames, data length) waiting for window
        self.unacked = 0

    # ---------------------------------------------------------------- I/O
    def connection_made(self, transport):
        self.transport = transport
        settings = (3).to_bytes(2, "big") + (100_000).to_bytes(4, "big")  # MAX_CONCURRENT_STREAMS
        settings += (4).to_bytes(2, "big") + MAX_WINDOW.to_bytes(4, "big")  # INITIAL_WINDOW_SIZE
        self.out += frame(SETTINGS, 0, 0, settings)
        self.out += frame(WINDOW_UPDATE, 0, 0, (MAX_WINDOW - 65535).to_bytes(4, "big"))
        self.flush()

    def connection_lost(self, exc):
        self.transport = None
        self.streams.clear()
        self.pending.clear()

    def flush(self):
        if self.out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(bytes(self.out))
        self.out.clear()

    def fail(self):
        if self.transport is not None:
            self.out += frame(GOAWAY, 0, 0, bytes(4) + (1).to_bytes(4, "big"))  # PROTOCOL_ERROR
            self.flush()
            self.transport.close()

    def data_received(self, data):
        buf = self.buf
        buf += data
        if not self.preface_seen:
            if len(buf) < len(PREFACE):
                return
            if bytes(buf[:len(PREFACE)]) != PREFACE:
                return self.fail()
            del buf[:len(PREFACE)]
            self.preface_seen = True
        try:
            while len(buf) >= 9:
                length = int.from_bytes(buf[0:3], "big")
                if len(buf) < 9 + length:
                    break
                kind, flags = buf[3], buf[4]
                sid = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
                payload = bytes(buf[9:9 + length])
                del buf[:9 + length]
                self.on_frame(kind, flags, sid, payload)
        except Exception:  # noqa: BLE001 - a broken peer ends its own connection only
            return self.fail()
        self.flush()

    # ---------------------------------------------------------------- frames
    def on_frame(self, kind, flags, sid, payload):
        if self.block is not None and kind != CONTINUATION:
            raise ValueError("expected CONTINUATION")
        if kind == DATA:
            self.unacked += len(payload)
            if self.unacked > (1 << 29):
                self.out += frame(WINDOW_UPDATE, 0, 0, self.unacked.to_bytes(4, "big"))
                self.unacked = 0
            if flags & PADDED:
                payload = payload[1:len(payload) - payload[0]]
            stream = self.streams.get(sid)
            if stream is not None:
                stream[1] += payload
                if flags & END_STREAM:
                    self.complete(sid)
        elif kind == HEADERS:
            pos, end = 0, len(payload)
            if flags & PADDED:
                pos, end = 1, end - payload[0]
            if flags & PRIORITY_FLAG:
                pos += 5
            self.block = [sid, bytearray(payload[pos:end]), bool(flags & END_STREAM)]
            if flags & END_HEADERS:
                self.header_block_done()
        elif kind == CONTINUATION:
            if self.block is None or self.block[0] != sid:
                raise ValueError("unexpected CONTINUATION")
            self.block[1] += payload
            if flags & END_HEADERS:
                self.header_block_done()
        elif kind == SETTINGS:
            if not flags & ACK:
                for i in range(0, len(payload) - 5, 6):
                    ident = int.from_bytes(payload[i:i + 2], "big")
                    value = int.from_bytes(payload[i + 2:i + 6], "big")
                    if ident == 4:
                        self.peer_stream_window = value
                self.out += frame(SETTINGS, ACK, 0)
        elif kind == PING:
            if not flags & ACK:
                self.out += frame(PING, ACK, 0, payload)
        elif kind == WINDOW_UPDATE:
            if sid == 0:
                self.send_window += int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
                self.drain()
        elif kind == RST_STREAM:
            self.streams.pop(sid, None)
        # PRIORITY, GOAWAY, PUSH_PROMISE, unknown: nothing to do (GOAWAY: the peer closes)

    def header_block_done(self):
        sid, block, end_stream = self.block
        self.block = None
        headers = self.decoder.decode(bytes(block), raw=True)  # always decode: table state
        if sid not in self.streams:
            path = next((v.decode("latin-1") for k, v in headers if k == b":path"), "")
            self.streams[sid] = [path, bytearray()]
        if end_stream:
            self.complete(sid)

    # ---------------------------------------------------------------- calls
    def complete(self, sid):
        path, body = self.streams[sid]
        if path == DETECT:
            if COUNT_CALLS:
                print("detect call", flush=True)
            if self.delay > 0:
                asyncio.get_running_loop().call_later(self.delay, self.answer, sid, bytes(body))
            else:
                self.answer(sid, bytes(body), flush=False)
        elif path == HEALTH:
            self.reply(sid, 0, "", grpc_frame(HEALTH_SERVING))
        else:
            self.reply(sid, 12, f"unknown method {path}", b"")

    def answer(self, sid, body, flush=True):
        if sid not in self.streams:
            return  # reset meanwhile, or the connection is gone
        result = self.cache.get(body)
        if result is None:
            result = detect(body)
            self.cache[body] = result
            if len(self.cache) > 256:
                self.cache.popitem(last=False)
        self.reply(sid, *result)
        if COUNT_CALLS:
            print("detect answered", flush=True)
        if flush:
            self.flush()

    def reply(self, sid, status, message, framed):
        if self.streams.pop(sid, None) is None:
            return
        if status != 0:  # Trailers-Only
            block = RESPONSE_HEADERS + literal("grpc-status", str(status)) + \
                literal("grpc-message", message.encode("ascii", "replace").decode())
            self.out += frame(HEADERS, END_HEADERS | END_STREAM, sid, block)
            return
        if len(framed) > self.peer_stream_window:
            self.out += frame(HEADERS, END_HEADERS | END_STREAM, sid, RESPONSE_HEADERS +
                              literal("grpc-status", "8") +
                              literal("grpc-message", "answer larger than the stream window"))
            return
        frames = frame(HEADERS, END_HEADERS, sid, RESPONSE_HEADERS)
        for i in range(0, len(framed), MAX_FRAME):
            frames += frame(DATA, 0, sid, framed[i:i + MAX_FRAME])
        frames += frame(HEADERS, END_HEADERS | END_STREAM, sid, OK_TRAILERS)
        self.pending.append((frames, len(framed)))
        self.drain()

    def drain(self):
        while self.pending and self.pending[0][1] <= self.send_window:
            frames, size = self.pending.popleft()
            self.send_window -= size
            self.out += frames


async def serve(host, port, delay):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(delay), host, port, reuse_address=True,
                                      backlog=1024)
    bound = server.sockets[0].getsockname()[1]
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"delay backend ready on port {bound}", flush=True)
    async with server:
        await stop.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--delay", type=float, default=0.05, metavar="SECONDS")
    ap.add_argument("--count-calls", action="store_true",
                    help='print "detect call" and "detect answered" for each Detect call')
    args = ap.parse_args()
    global COUNT_CALLS
    COUNT_CALLS = args.count_calls
    asyncio.run(serve(args.host, args.port, args.delay))


if __name__ == "__main__":
    main()
