"""Schemathesis hooks for Tests/interop/test_gateway_schemathesis.py (loaded through
SCHEMATHESIS_HOOKS).

One check, in place of schemathesis' not_a_server_error: every 5xx is a failure except
a 504 DEADLINE_EXCEEDED for a request whose own Grpc-Timeout was shorter than
SHORT_DEADLINE_NS. Such a 504 is the documented answer (openapi.yaml, GatewayTimeout):
schemathesis generates deadlines like `9424n`, which no backend call can meet. A 504
for a longer deadline, or any other 5xx, still fails.
"""

import json

import schemathesis

SHORT_DEADLINE_NS = 100_000_000  # 100 ms: a /detect round trip on loopback takes ~1 ms
UNIT_NS = {"H": 3_600_000_000_000, "M": 60_000_000_000, "S": 1_000_000_000,
           "m": 1_000_000, "u": 1_000, "n": 1}


def grpc_timeout_ns(value):
    if not isinstance(value, str) or len(value) < 2 or value[-1] not in UNIT_NS:
        return None
    digits = value[:-1]
    if not digits.isdigit() or len(digits) > 8:
        return None
    return int(digits) * UNIT_NS[value[-1]]


@schemathesis.check
def not_a_server_error_but_a_short_deadline(ctx, response, case):
    """No 5xx, except 504 DEADLINE_EXCEEDED when the request's Grpc-Timeout was < 100 ms."""
    status = response.status_code
    if status < 500:
        return None
    headers = {k.lower(): v for k, v in (case.headers or {}).items()}
    deadline = grpc_timeout_ns(headers.get("grpc-timeout"))
    if status == 504 and deadline is not None and deadline < SHORT_DEADLINE_NS:
        try:
            code = json.loads(response.content).get("code")
        except (ValueError, AttributeError):
            code = None
        if code == 4:
            return None
    raise AssertionError(f"server error {status} (Grpc-Timeout: {headers.get('grpc-timeout')!r}): "
                         f"{response.content[:300]!r}")
