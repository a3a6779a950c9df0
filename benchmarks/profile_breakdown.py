#!/usr/bin/env python3
"""Where one core's time goes while it serves the gateway's whole path: reads
`perf script` output (samples of cpu0 with call chains, from profile-breakdown.sh) and
sorts every sample into a phase of a request by its stack, then prints a markdown
table: share of the core and microseconds per request (given the measured rate).

The phases are those of issue 15: receive, parse and convert (JSON → protobuf), the
gRPC call out (client), the backend (its HTTP/2 server, then decode and detect), the
answer (protobuf → JSON, queueing it), libmicrohttpd, the Swift runtime and malloc
outside those, and the kernel (network, scheduling and wake-ups, memory, other).
A sample counts for the first phase whose rule matches; user-space rules look at the
whole stack, so a memmove inside the JSON scanner counts as parsing."""

import re
import sys
from collections import Counter

# (phase, pattern searched in the stack's symbols), most specific first. Swift's
# mangled names keep identifiers whole; a type is matched where it is the context of
# the function (`12OutliersJSON20ProtobufMetricWriterV`: the module, then the type),
# not where it is only a parameter's type further along the name.
USER_RULES = [
    ("parse: numbers (decimal → double)", r"strtod|str_to_mpn|__mpn_|round_and_return|DecimalParser|exactDouble"),
    ("convert: protobuf writer", r"OutliersJSON\d+ProtobufMetricWriterV"),
    ("parse: JSON scanner", r"OutliersJSON\d+PlainBodyScanner|OutliersJSON\d+RFC3339"),
    ("parse: jansson (full decoder)", r"json_|jansson|JSONCodec.*transcode|transcodeRequest"),
    ("answer: protobuf → JSON, queue", r"detectResponse|encodeResponse|GatewayC5queue|MHD_create_response|MHD_queue_response"),
    ("backend: decode + detect", r"OutliersRequestValues|DetectService|9Detection|OutlierDetector"),
    ("backend: gRPC server (HTTP/2, framing)", r"ServerConnection|ServerCallHandler|GRPCServer|MessageDeframer"),
    ("gRPC call out (client, HTTP/2)", r"ClientConnection|ChannelCore|GRPCChannel|ClientCall|MessageFramer"),
    ("receive: body into the buffer", r"GatewayC7receive"),
    ("gateway: routing, head, bookkeeping", r"RESTGateway"),
    ("event loop, HTTP/2 (nghttp2)", r"nghttp2|H2GRPC"),
    ("libmicrohttpd", r"libmicrohttpd|MHD_"),
]
KERNEL_RULES = [
    ("kernel: scheduling, wake-ups, epoll", r"schedule|switch_to|finish_task_switch|futex|epoll|eventfd|try_to_wake|ttwu|pick_next|update_curr|enqueue|dequeue"),
    ("kernel: network (TCP on loopback, copies)", r"tcp_|ip_|sock_|skb|net_rx|napi|__dev_queue|copy_to_iter|copy_from_iter|inet_|loopback"),
    ("kernel: memory (page faults, madvise)", r"page_fault|clear_page|handle_mm|anonymous_page|madvise|unmap|alloc_pages|folio"),
]


def samples(lines):
    """Yields (command, [frames leaf first]) per sample of `perf script`."""
    command, frames = None, []
    for line in lines:
        if not line.strip():
            if command is not None:
                yield command, frames
            command, frames = None, []
        elif not line.startswith((" ", "\t")):
            command = line.split()[0]
        else:
            parts = line.split(None, 1)
            frames.append(parts[1] if len(parts) > 1 else parts[0])
    if command is not None:
        yield command, frames


def phase(command, frames):
    if command == "swapper":
        return "idle"
    leaf = frames[0] if frames else ""
    if "[kernel.kallsyms]" in leaf:
        kernel = " ".join(f for f in frames if "[kernel.kallsyms]" in f)
        for name, pattern in KERNEL_RULES:
            if re.search(pattern, kernel):
                return name
        return "kernel: other"
    stack = " ".join(frames)
    for name, pattern in USER_RULES:
        if re.search(pattern, stack):
            return name
    if re.search(r"libswiftCore|swift_", leaf):
        return "Swift runtime (retain/release, other)"
    if re.search(r"libc\.so|malloc|free|memmove|memcpy", leaf):
        return "libc (malloc, copies), other"
    return "other"


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: perf script ... | profile_breakdown.py REQUESTS_PER_SECOND")
    rate = float(sys.argv[1])
    if rate <= 0:
        sys.exit(f"no requests measured (rate {rate}): the profile says nothing per request")
    counts = Counter(phase(command, frames) for command, frames in samples(sys.stdin))
    total = sum(counts.values())
    if total == 0:
        sys.exit("no samples in the perf script output")
    print(f"| phase | share of cpu0 | µs per request |\n|---|---:|---:|")
    for name, count in counts.most_common():
        share = count / total
        print(f"| {name} | {100 * share:.1f}% | {share * 1e6 / rate:.0f} |")
    print(f"| **all** ({total} samples, {rate:.0f} req/s) | 100% | {1e6 / rate:.0f} |")


if __name__ == "__main__":
    main()
