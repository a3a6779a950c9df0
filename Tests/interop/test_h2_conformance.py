"""RFC 9113 conformance of the gRPC server (`outliers backend`), with hand-written frames.

The h2 package's connection object refuses to send most of what these tests need
(trailers without END_STREAM, a lower stream id, more streams than the peer allows),
so frames are built with hyperframe and header blocks with hpack (both come with h2)
and written to a plain socket. Each case is tried with four kinds of request, because
the server answers three of them before the request is complete:

  detect       POST /pb.Outliers/Detect, application/grpc: read to the end, then answered
  unknown      POST /pb.Outliers/Nope: UNIMPLEMENTED as soon as the headers arrive
  get          GET /: HTTP 405 as soon as the headers arrive
  text-plain   POST with content-type text/plain: HTTP 415 as soon as the headers arrive

After a stream error, the same connection must still answer a Detect call.
Every read has a deadline, so nothing can hang.
"""

import socket
import subprocess
import sys
import textwrap
import time

import grpc
import hpack
import pytest
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame, HeadersFrame,
                              PingFrame, PriorityFrame, RstStreamFrame, SettingsFrame,
                              WindowUpdateFrame)

from conftest import skip_if_python

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
NO_ERROR, PROTOCOL_ERROR, REFUSED_STREAM = 0x0, 0x1, 0x7
READ_TIMEOUT = 10.0  # seconds, the longest any test waits for a frame
DETECT_VALUES = [1, 2, 100, 1, 3, 200, 1]  # outlier at index 5

REQUEST_KINDS = ["detect", "unknown", "get", "text-plain"]


def grpc_message(payload, compressed=False):
    return bytes([1 if compressed else 0]) + len(payload).to_bytes(4, "big") + payload


def request_headers(server, kind="detect", extra=()):
    method, path, content_type = {
        "detect": ("POST", "/pb.Outliers/Detect", "application/grpc"),
        "unknown": ("POST", "/pb.Outliers/Nope", "application/grpc"),
        "get": ("GET", "/", None),
        "text-plain": ("POST", "/pb.Outliers/Detect", "text/plain"),
    }[kind]
    headers = [(":method", method), (":scheme", "http"), (":path", path),
               (":authority", server.address)]
    if content_type:
        headers.append(("content-type", content_type))
    if method == "POST":
        headers.append(("te", "trailers"))
    return headers + list(extra)


class Stream:
    """What the server sent on one stream."""

    def __init__(self):
        self.headers = None   # dict of the first header block
        self.trailers = None  # dict of a second header block
        self.data = b""
        self.ended = False    # END_STREAM seen
        self.reset = None     # RST_STREAM error code

    @property
    def grpc_status(self):
        block = self.trailers if self.trailers is not None else self.headers
        return None if block is None or "grpc-status" not in block else int(block["grpc-status"])

    def __repr__(self):
        return (f"Stream(headers={self.headers}, trailers={self.trailers}, data={self.data[:60]!r}"
                f"{'...' if len(self.data) > 60 else ''}, ended={self.ended}, reset={self.reset})")


class RawConnection:
    """One HTTP/2 connection (h2c, prior knowledge) driven frame by frame."""

    def __init__(self, server, settings=None, ack_settings=True):
        self.server = server
        self.ack_settings = ack_settings
        self.initial_window = (settings or {}).get(SettingsFrame.INITIAL_WINDOW_SIZE, 65535)
        self.sock = socket.create_connection((server.host, server.port), timeout=READ_TIMEOUT)
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.buffer = b""
        self.streams = {}
        self.server_settings = {}
        self.goaway = None        # (last_stream_id, error_code)
        self.closed = False       # EOF from the server
        self._block = None        # (stream_id, bytes, end_stream) of a header block in pieces
        settings_frame = SettingsFrame(0)
        for key, value in (settings or {}).items():
            settings_frame.settings[key] = value
        self.sock.sendall(PREFACE + settings_frame.serialize())
        # The server's SETTINGS come first; ours are acknowledged with them.
        self.read_until(lambda: bool(self.server_settings), "the server's SETTINGS")

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def stream(self, stream_id):
        return self.streams.setdefault(stream_id, Stream())

    # Sending.

    def send(self, *frames):
        self.sock.sendall(b"".join(f.serialize() for f in frames))

    def headers_frame(self, stream_id, headers, end_stream=False):
        flags = ["END_HEADERS"] + (["END_STREAM"] if end_stream else [])
        return HeadersFrame(stream_id, data=self.encoder.encode(headers), flags=flags)

    @staticmethod
    def data_frame(stream_id, payload, end_stream=False):
        return DataFrame(stream_id, data=payload, flags=["END_STREAM"] if end_stream else [])

    # Receiving.

    def _read_frame(self, deadline):
        while True:
            if len(self.buffer) >= 9:
                length = int.from_bytes(self.buffer[:3], "big")
                if len(self.buffer) >= 9 + length:
                    frame, _ = Frame.parse_frame_header(memoryview(self.buffer[:9]))
                    frame.parse_body(memoryview(self.buffer[9:9 + length]))
                    self.buffer = self.buffer[9 + length:]
                    return frame
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.closed = True
                return None
            self.buffer += chunk

    def _handle(self, frame):
        if isinstance(frame, SettingsFrame):
            if "ACK" not in frame.flags:
                self.server_settings.update(frame.settings)
                if self.ack_settings:
                    self.send(SettingsFrame(0, flags=["ACK"]))
        elif isinstance(frame, PingFrame):
            if "ACK" not in frame.flags:
                self.send(PingFrame(0, opaque_data=frame.opaque_data, flags=["ACK"]))
        elif isinstance(frame, GoAwayFrame):
            self.goaway = (frame.last_stream_id, frame.error_code)
        elif isinstance(frame, RstStreamFrame):
            self.stream(frame.stream_id).reset = frame.error_code
        elif isinstance(frame, DataFrame):
            stream = self.stream(frame.stream_id)
            stream.data += frame.data
            if frame.flow_controlled_length:
                # Keep the server's windows open (stream and connection).
                self.send(WindowUpdateFrame(0, window_increment=frame.flow_controlled_length),
                          WindowUpdateFrame(frame.stream_id,
                                            window_increment=frame.flow_controlled_length))
            stream.ended = stream.ended or "END_STREAM" in frame.flags
        elif isinstance(frame, HeadersFrame):
            self._block = (frame.stream_id, frame.data, "END_STREAM" in frame.flags)
            if "END_HEADERS" in frame.flags:
                self._header_block_done()
        elif isinstance(frame, ContinuationFrame):
            stream_id, block, end_stream = self._block
            self._block = (stream_id, block + frame.data, end_stream)
            if "END_HEADERS" in frame.flags:
                self._header_block_done()

    def _header_block_done(self):
        stream_id, block, end_stream = self._block
        self._block = None
        fields = dict(self.decoder.decode(block))
        stream = self.stream(stream_id)
        if stream.headers is None:
            stream.headers = fields
        else:
            stream.trailers = fields
        stream.ended = stream.ended or end_stream

    def read_until(self, done, what, timeout=READ_TIMEOUT):
        """Reads frames until done() (or the connection ends); fails after timeout."""
        deadline = time.monotonic() + timeout
        while not done():
            if self.closed:
                return
            frame = self._read_frame(deadline)
            if frame is None:
                if self.closed:
                    return
                raise AssertionError(f"waited {timeout} s for {what}; streams: {self.streams}, "
                                     f"goaway: {self.goaway}")
            self._handle(frame)

    def read_for(self, seconds):
        """Reads whatever arrives within `seconds` (for frames that may follow an end)."""
        deadline = time.monotonic() + seconds
        while not self.closed:
            frame = self._read_frame(deadline)
            if frame is None:
                return
            self._handle(frame)

    def wait_reset_or_goaway(self, stream_id, what):
        """Until the stream is reset or the connection goes away (an END_STREAM alone
        does not stop it: a stream error can follow an early answer)."""
        self.read_until(lambda: self.stream(stream_id).reset is not None or self.goaway is not None,
                        what)
        return self.stream(stream_id)

    def wait_response(self, stream_id, what="the response"):
        stream = self.stream(stream_id)
        self.read_until(lambda: stream.ended or stream.reset is not None or self.goaway is not None,
                        what)
        return stream

    # A normal call.

    def detect(self, stream_id, pb):
        """A Detect call on this connection: it must succeed."""
        request = pb.OutliersRequest(metrics=[pb.Metric(name="CPU", value=float(v))
                                              for v in DETECT_VALUES])
        frames = [self.headers_frame(stream_id, request_headers(self.server)),
                  self.data_frame(stream_id, grpc_message(request.SerializeToString()),
                                  end_stream=True)]
        if self.initial_window == 0:  # our own setting: open the stream for the answer
            frames.append(WindowUpdateFrame(stream_id, window_increment=65535))
        self.send(*frames)
        stream = self.wait_response(stream_id, f"the Detect response on stream {stream_id}")
        assert stream.reset is None and self.goaway is None, (stream, self.goaway)
        assert stream.headers.get(":status") == "200" and stream.grpc_status == 0, stream
        assert stream.data[0] == 0 and int.from_bytes(stream.data[1:5], "big") == len(stream.data) - 5
        assert list(pb.OutliersResponse.FromString(stream.data[5:]).indices) == [5], stream


def body_for(kind, pb):
    if kind == "detect":
        request = pb.OutliersRequest(metrics=[pb.Metric(value=float(v)) for v in DETECT_VALUES])
        return grpc_message(request.SerializeToString())
    return b"test"


@pytest.fixture(autouse=True)
def only_our_server():
    skip_if_python("these check the H2GRPC server; grpc core's own HTTP/2 differs in places")


# ----------------------------------------------------------------------------- §8.1 trailers

@pytest.mark.parametrize("kind", REQUEST_KINDS)
def test_trailers_without_end_stream_are_a_stream_error(server, pb, kind):
    """RFC 9113 §8.1: a second HEADERS frame (trailers) without END_STREAM is malformed:
    RST_STREAM(PROTOCOL_ERROR); the connection goes on."""
    with RawConnection(server) as conn:
        conn.send(conn.headers_frame(1, request_headers(server, kind)),
                  conn.data_frame(1, body_for(kind, pb)),
                  conn.headers_frame(1, [("x-trailer", "1")]))
        stream = conn.wait_reset_or_goaway(1, "RST_STREAM after trailers without END_STREAM")
        assert stream.reset == PROTOCOL_ERROR and conn.goaway is None, (stream, conn.goaway)
        conn.detect(3, pb)


@pytest.mark.parametrize("kind", REQUEST_KINDS)
def test_trailers_without_end_stream_after_a_pause(server, pb, kind):
    """The same, with the trailers sent after the server has seen (and possibly answered)
    the headers and the body."""
    with RawConnection(server) as conn:
        conn.send(conn.headers_frame(1, request_headers(server, kind)),
                  conn.data_frame(1, body_for(kind, pb)))
        conn.read_for(0.2)
        conn.send(conn.headers_frame(1, [("x-trailer", "1")]))
        stream = conn.wait_reset_or_goaway(1, "RST_STREAM after trailers without END_STREAM")
        assert stream.reset == PROTOCOL_ERROR and conn.goaway is None, (stream, conn.goaway)
        conn.detect(3, pb)


# ----------------------------------------------------------------------------- §8.1.1 content-length

@pytest.mark.parametrize("kind", REQUEST_KINDS)
@pytest.mark.parametrize("declared", ["more", "less"])
def test_content_length_mismatch_is_a_stream_error(server, pb, kind, declared):
    """RFC 9113 §8.1.1: content-length unequal to the DATA payload: RST_STREAM(PROTOCOL_ERROR)."""
    body = body_for(kind, pb)
    length = len(body) + 10 if declared == "more" else len(body) - 2
    with RawConnection(server) as conn:
        conn.send(conn.headers_frame(1, request_headers(server, kind,
                                                        [("content-length", str(length))])))
        conn.read_for(0.1)  # the server sees the headers alone first (and may answer)
        conn.send(conn.data_frame(1, body, end_stream=True))
        stream = conn.wait_reset_or_goaway(1, "RST_STREAM after a wrong content-length")
        assert stream.reset == PROTOCOL_ERROR and conn.goaway is None, (stream, conn.goaway)
        conn.detect(3, pb)


# ----------------------------------------------------------------------------- §5.1.1 stream ids

@pytest.mark.parametrize("kind", REQUEST_KINDS)
@pytest.mark.parametrize("first_stream", ["finished", "open"])
def test_lower_stream_id_is_a_connection_error(server, pb, kind, first_stream):
    """RFC 9113 §5.1.1: a new stream id must exceed every id the client used before; a lower
    one is a connection error PROTOCOL_ERROR (GOAWAY), whatever the first stream's state."""
    with RawConnection(server) as conn:
        if first_stream == "finished":
            conn.detect(5, pb)
        else:
            conn.send(conn.headers_frame(5, request_headers(server)))
            conn.read_for(0.1)
        conn.send(conn.headers_frame(3, request_headers(server, kind), end_stream=True))
        conn.read_until(lambda: conn.goaway is not None, "GOAWAY after a lower stream id")
        assert conn.goaway == (5, PROTOCOL_ERROR), conn.goaway
        conn.read_until(lambda: conn.closed, "the server closing the connection after GOAWAY")


@pytest.mark.parametrize("how", ["answered", "client-reset"])
def test_headers_on_a_closed_stream_is_a_connection_error(server, pb, how):
    """RFC 9113 §5.1 (closed): HEADERS on a stream that both ends closed, or that the client
    reset, is a connection error STREAM_CLOSED (what h2spec's "closed" cases expect)."""
    with RawConnection(server) as conn:
        if how == "answered":
            conn.detect(1, pb)
        else:
            conn.send(conn.headers_frame(1, request_headers(server)), RstStreamFrame(1, error_code=0x8))
            conn.detect(3, pb)
        conn.send(conn.headers_frame(1, request_headers(server), end_stream=True))
        conn.read_until(lambda: conn.goaway is not None, "GOAWAY after HEADERS on a closed stream")
        assert conn.goaway[1] == 0x5, conn.goaway  # STREAM_CLOSED


def test_frames_on_a_stream_the_server_reset_are_ignored(server, pb):
    """RFC 9113 §5.1 (closed): after its RST_STREAM the server must ignore what the client
    had already sent on that stream, trailers included; the lower-stream-id check must not
    mistake those trailers for a new stream."""
    with RawConnection(server) as conn:
        body = body_for("detect", pb)
        conn.send(conn.headers_frame(1, request_headers(server, extra=[("content-length", "1")])),
                  conn.data_frame(1, body))
        stream = conn.wait_reset_or_goaway(1, "RST_STREAM after a wrong content-length")
        assert stream.reset == PROTOCOL_ERROR and conn.goaway is None, (stream, conn.goaway)
        conn.detect(3, pb)
        conn.send(conn.data_frame(1, b"late"), conn.headers_frame(1, [("x-late", "1")], end_stream=True))
        conn.detect(5, pb)
        assert conn.goaway is None, conn.goaway


# ----------------------------------------------------------------------------- §5.1.2 concurrency

@pytest.mark.parametrize("kind", REQUEST_KINDS)
@pytest.mark.parametrize("acked", [False, True], ids=["settings-not-acked", "settings-acked"])
def test_streams_beyond_max_concurrent_streams_are_refused(server, pb, kind, acked):
    """RFC 9113 §5.1.2: a HEADERS frame beyond the advertised SETTINGS_MAX_CONCURRENT_STREAMS
    is a stream error PROTOCOL_ERROR or REFUSED_STREAM. The streams within the limit are left
    open (no END_STREAM), as by a client still sending its requests; the server has time to
    answer them (early, for three kinds) before the one too many arrives.

    Until the client has acknowledged our SETTINGS, nghttp2 refuses the stream
    (RST_STREAM REFUSED_STREAM, safe to retry) and the connection goes on. Once it has,
    nghttp2 makes it a connection error PROTOCOL_ERROR (GOAWAY): RFC 9113 §5.4 lets an
    endpoint treat a stream error as a connection error, and nghttp2 offers no other choice
    (its check runs before any callback)."""
    with RawConnection(server, ack_settings=acked) as conn:
        limit = conn.server_settings.get(SettingsFrame.MAX_CONCURRENT_STREAMS)
        assert limit is not None and 0 < limit <= 10000, conn.server_settings
        ids = [1 + 2 * i for i in range(limit + 1)]
        conn.send(*(conn.headers_frame(i, request_headers(server, kind)) for i in ids[:-1]))
        conn.read_for(0.5)
        over = ids[-1]
        conn.send(conn.headers_frame(over, request_headers(server, kind)))
        stream = conn.wait_reset_or_goaway(over, f"RST_STREAM on stream {over}, one over {limit}")
        resets = {i: conn.stream(i).reset for i in ids[:-1] if conn.stream(i).reset is not None}
        assert resets == {}, f"streams within the limit were reset: {resets}"
        if acked:
            assert stream.reset is None and conn.goaway == (ids[-2], PROTOCOL_ERROR), \
                (stream, conn.goaway)
            return
        assert stream.reset == REFUSED_STREAM and conn.goaway is None, (stream, conn.goaway)
        # Finishing one stream frees a place: the next call goes through.
        conn.send(conn.data_frame(ids[0], body_for(kind, pb), end_stream=True))
        conn.wait_response(ids[0], "the answer on the first stream")
        conn.read_for(0.1)
        conn.detect(over + 2, pb)


# ----------------------------------------------------------------------------- §5.1 half-closed (remote)

@pytest.mark.parametrize("kind", REQUEST_KINDS)
@pytest.mark.parametrize("when", ["with-end-stream", "after-end-stream"])
@pytest.mark.parametrize("window", [None, 0], ids=["default-window", "zero-window"])
def test_window_update_and_priority_on_half_closed_remote_stream(server, pb, kind, when, window):
    """RFC 9113 §5.1: in half-closed (remote) the server must accept WINDOW_UPDATE and
    PRIORITY; the response still comes, complete. With an initial stream window of 0 the
    response's DATA can only leave after the WINDOW_UPDATE."""
    settings = {} if window is None else {SettingsFrame.INITIAL_WINDOW_SIZE: window}
    with RawConnection(server, settings) as conn:
        request = [conn.headers_frame(1, request_headers(server, kind)),
                   conn.data_frame(1, body_for(kind, pb), end_stream=True)]
        extras = [WindowUpdateFrame(1, window_increment=1024),
                  PriorityFrame(1, depends_on=0, stream_weight=200),
                  WindowUpdateFrame(0, window_increment=1024)]
        if when == "with-end-stream":
            conn.send(*request, *extras)  # one write: the server reads them before it answers
        else:
            conn.send(*request)
            conn.send(*extras)
        stream = conn.wait_response(1)
        conn.read_for(0.1)
        assert stream.ended and stream.reset is None and conn.goaway is None, (stream, conn.goaway)
        expected = {"detect": ("200", 0), "unknown": ("200", 12), "get": ("405", 12),
                    "text-plain": ("415", 13)}[kind]
        assert (stream.headers.get(":status"), stream.grpc_status) == expected, stream
        if kind == "detect":
            assert list(pb.OutliersResponse.FromString(stream.data[5:]).indices) == [5], stream
        conn.detect(3, pb)


def test_window_update_and_priority_while_a_slow_call_runs(server, pb):
    """The same on a request large enough to run on a worker thread (over 64 KiB): the
    frames arrive while the handler runs, the response is held by a zero window until then."""
    request = pb.OutliersRequest(metrics=[pb.Metric(name="CPU", value=float(i % 97))
                                          for i in range(200_000)])
    body = grpc_message(request.SerializeToString())
    with RawConnection(server, {SettingsFrame.INITIAL_WINDOW_SIZE: 0}) as conn:
        pieces = [body[i:i + 16384] for i in range(0, len(body), 16384)]
        conn.send(conn.headers_frame(1, request_headers(server)),
                  *(conn.data_frame(1, piece, end_stream=i == len(pieces) - 1)
                    for i, piece in enumerate(pieces)))
        time.sleep(0.02)
        conn.send(PriorityFrame(1, depends_on=0, stream_weight=1),
                  WindowUpdateFrame(1, window_increment=1 << 16))
        stream = conn.wait_response(1)
        assert stream.ended and stream.reset is None and conn.goaway is None, (stream, conn.goaway)
        assert stream.grpc_status == 0, stream
        assert list(pb.OutliersResponse.FromString(stream.data[5:]).indices) == [], stream
        conn.detect(3, pb)


# ----------------------------------------------------------------------------- early answers

def test_early_answer_then_a_long_body_is_stopped_with_no_error(server, pb):
    """RFC 9113 §8.1: after a complete early answer (UNIMPLEMENTED at the headers) a client
    that keeps sending a body is asked to stop without error: RST_STREAM(NO_ERROR), once
    more than 64 KiB has arrived after the answer. The answer itself is intact."""
    with RawConnection(server) as conn:
        conn.send(conn.headers_frame(1, request_headers(server, "unknown")))
        stream = conn.wait_response(1, "the early answer")
        assert stream.ended and stream.reset is None and stream.grpc_status == 12, stream
        chunk = bytes(16384)
        for _ in range(8):  # 128 KiB, within the server's 8 MiB stream window
            conn.send(conn.data_frame(1, chunk))
        conn.read_until(lambda: stream.reset is not None, "RST_STREAM(NO_ERROR) after 64 KiB")
        assert stream.reset == NO_ERROR and conn.goaway is None, (stream, conn.goaway)
        conn.detect(3, pb)
