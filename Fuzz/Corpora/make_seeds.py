#!/usr/bin/env python3
"""Writes the seed corpora of Fuzz/Corpora/<target>/ (run from the repository root:
python3 Fuzz/Corpora/make_seeds.py). Seeds are small valid inputs of every shape
the targets take, plus edge cases; libFuzzer mutates from them. Files found by
fuzzing (regressions) are kept beside these and never rewritten here."""
import os
import struct

ROOT = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    folder = os.path.join(ROOT, target)
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


# ---- JSON bodies (FuzzJSONTranscode) ----------------------------------------
with open(os.path.join(ROOT, "..", "..", "examples", "metrics.json")) as f:
    lines = f.read().splitlines()
# The article's data: its first 40 metrics, closed as a whole body (the file is 72 KB).
metrics_slice = "\n".join(lines[:40]).rstrip(",") + "\n]}\n"
json_seeds = {
    "metrics_slice.json": metrics_slice,
    "article_object.json": '{"metrics":[{"value":1},{"value":2},{"value":100},{"value":1},{"value":3},{"value":200},{"value":1}]}',
    "article_bare_numbers.json": "[1, 2, 100, 1, 3, 200, 1]",
    "bare_objects.json": '[{"time":"2020-05-22T14:13:11Z","name":"CPU","value":97.3},{"name":"mem","value":-0.0}]',
    "full_metric_offset.json": '{"metrics":[{"time":"2020-05-22T19:43:11.5+05:30","name":"CPU","value":1e-3}]}',
    "nulls.json": '{"metrics":[{"time":null,"name":null,"value":null}]}',
    "metrics_null.json": '{"metrics":null}',
    "empty_object.json": "{}",
    "empty_array.json": "[]",
    "special_values.json": '[{"value":"NaN"},{"value":"Infinity"},{"value":"-Infinity"},{"value":"1.5"},{"value":"-2e3"}]',
    "number_strings_bare.json": '["NaN", "1.5", 2, "-Infinity"]',
    "escapes.json": '[{"name":"C\\"P\\\\U\\n\\u00e9\\u0000","value":1}]',
    "unicode_name.json": '[{"name":"m\u00e9moire \u2603","value":2.5}]',
    "fractions.json": '[{"time":"2020-05-22T14:13:11.123456789Z"},{"time":"2020-05-22T14:13:11.1Z"},{"time":"0001-01-01T00:00:00Z"},{"time":"9999-12-31T23:59:59.999999999Z"}]',
    "numbers_edge.json": "[0, -0, 1e308, 2.2250738585072014e-308, 4.9e-324, 9007199254740993, 123456789012345678901234567890, 0.1, 1E22, 1e23]",
    "duplicate_key.json": '[{"value":1,"value":2}]',
    "unknown_field.json": '{"metrics":[{"value":1,"unit":"%"}]}',
    "wrong_type.json": '[{"value":true}]',
    "mixed_array.json": "[1, {\"value\":2}]",
    "bad_time.json": '[{"time":"2020-02-30T00:00:00Z"}]',
    "syntax_error.json": '{"metrics":[{"value":1,}]}',
    "whitespace.json": ' \t\r\n{ "metrics" : [ { "value" : 1 } ] } \n',
    "deep.json": "[" * 40 + "]" * 40,
}
for name, body in json_seeds.items():
    write("FuzzJSONTranscode", name, body)

# ---- RFC 3339 (FuzzRFC3339) --------------------------------------------------
times = [
    "2020-05-22T14:13:11Z", "2020-05-22T14:13:11.5Z", "2020-05-22T14:13:11.123456789Z",
    "2020-05-22T19:43:11.5+05:30", "2020-05-22T03:13:11-11:00", "2020-05-22T14:13:11+14:00",
    "2020-05-22T14:13:11+23:59", "0001-01-01T00:00:00Z", "0001-01-01T00:30:00+01:00",
    "9999-12-31T23:59:59.999999999Z", "9999-12-31T23:30:00-01:00", "0000-12-31T23:30:00-01:00",
    "2000-02-29T12:00:00Z", "1900-02-29T12:00:00Z", "2020-05-22t14:13:11z", "2020-05-22T14:13:60Z",
    "2020-05-22T14:13:11.Z", "2020-05-22T14:13:11.1234567890Z", "1970-01-01T00:00:00Z",
]
for index, text in enumerate(times):
    write("FuzzRFC3339", "time_%02d" % index, text)


# ---- protobuf requests (FuzzRequestValues) -----------------------------------
def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field(number, wire, payload):
    key = varint(number << 3 | wire)
    if wire == 2:
        return key + varint(len(payload)) + payload
    return key + payload


def metric(seconds=None, nanos=0, name=None, value=None):
    body = b""
    if seconds is not None:
        ts = (field(1, 0, varint(seconds)) if seconds else b"") + (field(2, 0, varint(nanos)) if nanos else b"")
        body += field(1, 2, ts)
    if name:
        body += field(2, 2, name.encode())
    if value is not None:
        body += field(3, 1, struct.pack("<d", value))
    return field(1, 2, body)


def request(*metrics):
    return b"".join(metrics)


article = request(*[metric(value=v) for v in [1, 2, 100, 1, 3, 200, 1]])
pb_seeds = {
    "article.pb": article,
    "full_metrics.pb": request(metric(1590156791, 0, "CPU", 97.3), metric(-62135596800, 999999999, "mem", -0.0)),
    "empty.pb": b"",
    "empty_metric.pb": request(field(1, 2, b"")),
    "nan_inf.pb": request(metric(value=float("nan")), metric(value=float("inf")), metric(value=float("-inf"))),
    "unknown_fields.pb": field(9, 0, varint(7)) + article + field(15, 5, b"\x01\x02\x03\x04")
                         + field(1, 2, field(7, 1, b"\0" * 8) + field(3, 1, struct.pack("<d", 5.0))),
    "repeated_value.pb": request(field(1, 2, field(3, 1, struct.pack("<d", 1.0)) + field(3, 1, struct.pack("<d", 2.0)))),
    "value_wrong_wire.pb": request(field(1, 2, field(3, 0, varint(5)))),
    "group.pb": field(1, 2, bytes([0x1B, 0x1C])),
    "negative_seconds.pb": request(metric(-1, 5, "x", 1.0)),
    "long_varint.pb": bytes([0x0A, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]),
    "utf8_name.pb": request(field(1, 2, field(2, 2, "m\u00e9m".encode()))),
    # DetectOptions (field 2): method MAD, threshold 3, group_by_name, details; twice.
    "options.pb": article + field(2, 2, field(1, 0, varint(1)) + field(2, 1, struct.pack("<d", 3.0))
                                  + field(3, 0, varint(1)) + field(4, 0, varint(1))),
    "options_twice.pb": field(2, 2, field(1, 0, varint(2))) + article + field(2, 2, field(2, 1, struct.pack("<d", 1.0))),
}
for name, data in pb_seeds.items():
    write("FuzzRequestValues", name, data)


# ---- gRPC message streams (FuzzMessageDeframer) ------------------------------
def grpc_frame(message, flag=0):
    return bytes([flag]) + struct.pack(">I", len(message)) + message


def deframer_input(limit_index, repeat_exponent, cuts, stream):
    head = bytes([limit_index | repeat_exponent << 3, len(cuts)])
    return head + b"".join(struct.pack("<H", c) for c in cuts) + stream


write("FuzzMessageDeframer", "one_message", deframer_input(7, 0, [], grpc_frame(article)))
write("FuzzMessageDeframer", "two_messages_split", deframer_input(7, 0, [1, 6, 9], grpc_frame(b"abc") + grpc_frame(b"")))
write("FuzzMessageDeframer", "partial_prefix", deframer_input(5, 0, [2], grpc_frame(b"hello")[:3]))
write("FuzzMessageDeframer", "too_large", deframer_input(3, 0, [4], grpc_frame(b"x" * 20)))
write("FuzzMessageDeframer", "compressed", deframer_input(7, 0, [], grpc_frame(b"x") + grpc_frame(b"zz", flag=1)))
write("FuzzMessageDeframer", "bad_flag", deframer_input(7, 0, [3], grpc_frame(b"ok") + grpc_frame(b"no", flag=2)))
write("FuzzMessageDeframer", "compaction", deframer_input(7, 7, [100, 40000], grpc_frame(b"m" * 400) + grpc_frame(b"n" * 200)[:50]))
write("FuzzMessageDeframer", "zero_limit", deframer_input(0, 2, [5], grpc_frame(b"") * 3))


# ---- HTTP/2 connections (FuzzGRPCServer; the target sends the preface first) --
def h2frame(kind, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


DATA, HEADERS, PRIORITY, RST, SETTINGS, PING, GOAWAY, WINDOW, CONTINUATION = 0, 1, 2, 3, 4, 6, 7, 8, 9


def literal(name, value):
    # HPACK literal header field without indexing, new name, no Huffman.
    n, v = name.encode(), value.encode()
    return b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v


def headers_block(path, content_type="application/grpc", method="POST", extra=()):
    fields = [(":method", method), (":scheme", "http"), (":path", path), (":authority", "localhost"),
              ("content-type", content_type), ("te", "trailers")] + list(extra)
    return b"".join(literal(n, v) for n, v in fields)


settings = h2frame(SETTINGS, 0, 0, b"")


def call(path, message, stream=1, **kw):
    return (h2frame(HEADERS, 0x4, stream, headers_block(path, **kw))
            + h2frame(DATA, 0x1, stream, grpc_frame(message)))


health = field(1, 2, b"pb.Outliers")
grpc_seeds = {
    "detect": settings + call("/pb.Outliers/Detect", article),
    "detect_timeout": settings + call("/pb.Outliers/Detect", article, extra=[("grpc-timeout", "100m"), ("x-meta", "1")]),
    "health_check": settings + call("/grpc.health.v1.Health/Check", health),
    "health_watch": settings + call("/grpc.health.v1.Health/Watch", b""),
    "reflection_list": settings + call("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", field(7, 2, b"")),
    "reflection_symbol": settings + call("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                                         field(4, 2, b"pb.Outliers")),
    "unknown_method": settings + call("/pb.Outliers/Nope", b""),
    "get_method": settings + h2frame(HEADERS, 0x5, 1, headers_block("/pb.Outliers/Detect", method="GET")),
    "bad_content_type": settings + call("/pb.Outliers/Detect", article, content_type="application/json"),
    "compressed_message": settings + h2frame(HEADERS, 0x4, 1, headers_block("/pb.Outliers/Detect"))
                          + h2frame(DATA, 0x1, 1, grpc_frame(b"\x1f\x8b", flag=1)),
    "two_streams_split_data": settings + h2frame(HEADERS, 0x4, 1, headers_block("/pb.Outliers/Detect"))
                              + h2frame(HEADERS, 0x4, 3, headers_block("/grpc.health.v1.Health/Check"))
                              + h2frame(DATA, 0, 1, grpc_frame(article)[:7]) + h2frame(DATA, 0x1, 3, grpc_frame(b""))
                              + h2frame(DATA, 0x1, 1, grpc_frame(article)[7:]),
    "continuation": settings + h2frame(HEADERS, 0, 1, headers_block("/pb.Outliers/Detect")[:20])
                    + h2frame(CONTINUATION, 0x4, 1, headers_block("/pb.Outliers/Detect")[20:])
                    + h2frame(DATA, 0x1, 1, grpc_frame(article)),
    "control_frames": settings + h2frame(PING, 0, 0, b"12345678") + h2frame(WINDOW, 0, 0, struct.pack(">I", 1 << 20))
                      + h2frame(PRIORITY, 0, 1, b"\0\0\0\0\x10") + call("/pb.Outliers/Detect", article, stream=3)
                      + h2frame(RST, 0, 3, struct.pack(">I", 8)) + h2frame(GOAWAY, 0, 0, b"\0\0\0\0\0\0\0\0"),
    "padded_data": settings + h2frame(HEADERS, 0x4, 1, headers_block("/pb.Outliers/Detect"))
                   + h2frame(DATA, 0x9, 1, b"\x03" + grpc_frame(article) + b"\0\0\0"),
    "too_large_prefix": settings + h2frame(HEADERS, 0x4, 1, headers_block("/pb.Outliers/Detect"))
                        + h2frame(DATA, 0x1, 1, b"\x00\x7f\xff\xff\xff"),
    "settings_only": settings,
}
for name, data in grpc_seeds.items():
    write("FuzzGRPCServer", name, data)


# ---- HTTP/1.1 requests (FuzzRESTGateway) ---------------------------------------
def http(method, path, body=b"", headers=()):
    if isinstance(body, str):
        body = body.encode()
    head = "%s %s HTTP/1.1\r\nHost: localhost\r\n" % (method, path)
    for name, value in headers:
        head += "%s: %s\r\n" % (name, value)
    if body or method == "POST":
        head += "Content-Length: %d\r\n" % len(body)
    return head.encode() + b"\r\n" + body


json_type = [("Content-Type", "application/json")]
rest_seeds = {
    "detect_bare": http("POST", "/detect", "[1, 2, 100, 1, 3, 200, 1]", json_type),
    "detect_object": http("POST", "/detect", json_seeds["bare_objects.json"], json_type),
    "detect_curl_form": http("POST", "/detect", "[1,2,3]", [("Content-Type", "application/x-www-form-urlencoded")]),
    "detect_protobuf": http("POST", "/detect", article, [("Content-Type", "application/x-protobuf"),
                                                         ("Accept", "application/x-protobuf")]),
    "detect_bad_protobuf": http("POST", "/detect", b"\x0a\x05\x19", [("Content-Type", "application/x-protobuf")]),
    "detect_timeout": http("POST", "/detect?x=1", "[1,2,3]", json_type + [("Grpc-Timeout", "100m"), ("X-Request-Id", "fuzz-1")]),
    "detect_bad_timeout": http("POST", "/detect", "[1]", [("Grpc-Timeout", "soon")]),
    "detect_bad_json": http("POST", "/detect", '{"metrics":[{"value":true}]}', json_type),
    "detect_too_large": http("POST", "/detect", "[1]", [("Content-Length", "99999999")]).replace(b"Content-Length: 3\r\n", b""),
    "detect_chunked": b"POST /detect HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n"
                      b"5\r\n[1,2,\r\n2\r\n3]\r\n0\r\n\r\n",
    "detect_wrong_type": http("POST", "/detect", "[1]", [("Content-Type", "text/plain")]),
    "get_detect": http("GET", "/detect"),
    "healthz": http("GET", "/healthz"),
    "head_healthz": http("HEAD", "/healthz"),
    "metrics": http("GET", "/metrics"),
    "openapi": http("GET", "/openapi.yaml", headers=[("Connection", "close")]),
    "not_found": http("DELETE", "/nope"),
    "pipelined": http("GET", "/healthz") + http("POST", "/detect", "[1,2]", json_type),
    "http10": b"GET /healthz HTTP/1.0\r\n\r\n",
    "expect_continue": http("POST", "/detect", "[1,2,3]", json_type + [("Expect", "100-continue")]),
}
for name, data in rest_seeds.items():
    write("FuzzRESTGateway", name, data)
