"""openapi.yaml's response examples are the gateway's real answers.

Every response example in openapi.yaml (under an operation or under
components/responses) carries `x-request`: the request that produces it. This module
collects them all from the spec, sends each to a running gateway and compares the
status, the Content-Type (the media type key, parameters included) and the body with
the example. The spec is the source: an example added without an `x-request` fails
here, and so does one whose answer drifts.

x-request fields:
  method, path            the request line
  headers                 {name: value}, sent as given (an empty value too); no
                          Content-Type is added when none is given
  body | bodyHex | bodyFile | bodyOnes
                          the body: UTF-8 text, hex bytes, a file of the repository,
                          or a JSON array of that many 1s
  sendBody: false         send the head only (with the Content-Length of `headers`)
  status                  the status, required under `default` (else the key is it)
  gateway                 not the module's `outliers serve` but `outliers gateway
                          [args]` in front of `backend`, one of
                            outliers: [args]    `outliers backend [args]`
                            python: [args]      examples/python/server.py [args]
                            scripted: [args]    Tests/interop/scripted_backend.py [args]
                            unreachable: H:P    an address where nothing listens
x-compare (next to x-request): how a body that cannot be equal is compared:
  metric-families         the `# TYPE` lines (names and types) are the same set
  subset                  the answer, read as YAML, holds the example (objects
                          recursively, other values equal)
  prefix                  the answer's text starts with the example (a string)
Without x-compare: JSON bodies are equal as JSON values.

Run:  .venv/bin/python -m pytest Tests/interop/test_gateway_spec_examples.py
"""

import copy
import http.client
import json
import math
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import REPO, free_port

sys.path.insert(0, str(REPO / "Tests" / "fixtures"))
from make_robust_fixtures import make_request  # noqa: E402  (numpy's and scipy's rules)

OPENAPI = REPO / "openapi.yaml"
SCRIPTED_BACKEND = Path(__file__).with_name("scripted_backend.py")
HTTP_METHODS = ("get", "put", "post", "delete", "head", "patch", "options")
X_REQUEST_KEYS = {"method", "path", "headers", "body", "bodyHex", "bodyFile", "bodyOnes",
                  "sendBody", "status", "gateway"}
COMPARISONS = {None, "metric-families", "subset", "prefix"}


def load_spec():
    return yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))


def resolve(doc, node):
    """Follow local $refs; return (object, JSON pointer of the last $ref or None)."""
    pointer = None
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), f"only local $refs are followed: {ref}"
        pointer = ref[1:]
        node = doc
        for part in pointer[1:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node, pointer


def response_examples(doc):
    """Every response example: a list of dicts with where (a readable name), key (the
    response's status key), media (the media type key) and example (the Example
    Object). A component response reached from several operations counts once."""
    found, seen = [], set()

    def add(where, key, response, pointer):
        response, ref = resolve(doc, response)
        pointer = ref or pointer
        for media, mobj in response.get("content", {}).items():
            if "example" in mobj:
                found.append({"where": f"{where} {media} (example)", "key": key, "media": media,
                              "example": {"value": mobj["example"]}, "id": f"{pointer}:{media}:"})
            for name, ex in mobj.get("examples", {}).items():
                ex, ex_ref = resolve(doc, ex)
                ident = ex_ref or f"{pointer}/content/{media}/examples/{name}"
                if ident in seen:
                    continue
                seen.add(ident)
                found.append({"where": f"{where} {media} {name}", "key": key, "media": media,
                              "example": ex, "id": ident})

    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method not in HTTP_METHODS:
                continue
            for key, response in op.get("responses", {}).items():
                add(f"{method.upper()} {path} {key}", str(key), response,
                    f"/paths/{path}/{method}/responses/{key}")
    for name, response in doc.get("components", {}).get("responses", {}).items():
        # Not reached from an operation (NotFound, say): its status is not known from
        # a key, so its x-request must say it.
        add(f"components/responses/{name}", None, response, f"/components/responses/{name}")
    return found


def example_problems(entry):
    """Why an example cannot be checked (empty when it can)."""
    ex = entry["example"]
    xreq = ex.get("x-request")
    if xreq is None:
        return [f"{entry['where']}: no x-request (the request that produces this example)"]
    problems = []
    if not isinstance(xreq, dict):
        return [f"{entry['where']}: x-request is not an object"]
    unknown = set(xreq) - X_REQUEST_KEYS
    if unknown:
        problems.append(f"{entry['where']}: unknown x-request fields {sorted(unknown)}")
    for field in ("method", "path"):
        if not isinstance(xreq.get(field), str):
            problems.append(f"{entry['where']}: x-request.{field} missing")
    if sum(k in xreq for k in ("body", "bodyHex", "bodyFile", "bodyOnes")) > 1:
        problems.append(f"{entry['where']}: more than one body field")
    if ex.get("x-compare") not in COMPARISONS:
        problems.append(f"{entry['where']}: x-compare {ex.get('x-compare')!r} is not one of "
                        f"{sorted(c for c in COMPARISONS if c)}")
    if "value" not in ex:
        problems.append(f"{entry['where']}: no value to compare with")
    if expected_status(entry) is None:
        problems.append(f"{entry['where']}: no status (key {entry['key']!r}; give x-request.status)")
    return problems


def expected_status(entry):
    xreq = entry["example"].get("x-request") or {}
    if "status" in xreq:
        if entry["key"] not in (None, "default") and str(xreq["status"]) != entry["key"]:
            return None  # contradicts its response key
        return int(xreq["status"])
    if entry["key"] and entry["key"].isdigit():
        return int(entry["key"])
    return None


def components_status(doc):
    """Status keys under which each component response is used: {pointer: {keys}}."""
    used = {}
    for item in doc["paths"].values():
        for method, op in item.items():
            if method not in HTTP_METHODS:
                continue
            for key, response in op.get("responses", {}).items():
                if isinstance(response, dict) and "$ref" in response:
                    used.setdefault(response["$ref"][1:], set()).add(str(key))
    return used


def checked_examples():
    doc = load_spec()
    entries = response_examples(doc)
    used = components_status(doc)
    for entry in entries:
        if entry["key"] is None:
            # A component response: the keys it is used under, if one and numeric.
            pointer = entry["id"].split("/content/")[0]
            keys = used.get(pointer, set())
            if len(keys) == 1:
                entry["key"] = next(iter(keys))
    return entries


EXAMPLES = checked_examples()


# ----------------------------------------------------------------------------- sending

def request_body(xreq):
    if "body" in xreq:
        return xreq["body"].encode("utf-8")
    if "bodyHex" in xreq:
        return bytes.fromhex(xreq["bodyHex"])
    if "bodyFile" in xreq:
        path = REPO / xreq["bodyFile"]
        if not path.is_file():
            pytest.fail(f"x-request.bodyFile {xreq['bodyFile']} does not exist")
        return path.read_bytes()
    if "bodyOnes" in xreq:
        return ("[" + ",".join(["1"] * int(xreq["bodyOnes"])) + "]").encode()
    return None


def send(port, xreq, timeout=30.0):
    """Send the request exactly as x-request says over a new connection; return
    (status, headers with lower-case names, body)."""
    body = request_body(xreq)
    headers = {str(k): str(v) for k, v in (xreq.get("headers") or {}).items()}
    lines = [f"{xreq['method']} {xreq['path']} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    # An empty value goes out as `Name:` exactly (the case of an empty Content-Type).
    lines += [f"{k}:" if v == "" else f"{k}: {v}" for k, v in headers.items()]
    if body is not None and not any(k.lower() == "content-length" for k in headers):
        lines.append(f"Content-Length: {len(body)}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        if body is not None and xreq.get("sendBody", True):
            sock.sendall(body)
        resp = http.client.HTTPResponse(sock, method=xreq["method"])
        resp.begin()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data


def nothing_listens(address):
    host, port = address.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    return False


def start_gateway(procs, setup):
    """`outliers gateway [args]` in front of the backend the example names."""
    backend = setup.get("backend") or {}
    assert len(backend) == 1, f"x-request.gateway.backend names one backend: {backend}"
    (kind, args), = backend.items()
    if kind == "unreachable":
        address = args
        assert nothing_listens(address), \
            f"the example needs nothing listening on {address}, and something does"
    elif kind == "outliers":
        address = procs.backend(None, *args).address
    elif kind == "python":
        address = procs.python(*args).address
    elif kind == "delay":  # Tests/interop/delay_backend.py: ignores deadlines, so the gateway's own fires
        address = procs.delay_backend(*args).address
    elif kind == "scripted":
        port = free_port()
        argv = [sys.executable, str(SCRIPTED_BACKEND), "--host", "127.0.0.1", "--port", str(port),
                *map(str, args)]
        address = procs._grpc("scripted", argv, port, retry_bind=False).address
    else:
        pytest.fail(f"unknown backend kind {kind!r} in x-request.gateway")
    return procs.gateway([address], *setup.get("args", []))


# ----------------------------------------------------------------------------- comparing

def metric_families(text):
    return {tuple(line.split()[2:4]) for line in text.splitlines() if line.startswith("# TYPE ")}


def contains(actual, expected):
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and contains(actual[k], v)
                                                for k, v in expected.items())
    return actual == expected


def compare(entry, status, headers, body):
    ex = entry["example"]
    expected = ex["value"]
    problems = []
    want_status = expected_status(entry)
    if status != want_status:
        problems.append(f"status {status}, the example says {want_status}")
    ctype = headers.get("content-type")
    if ctype != entry["media"]:
        problems.append(f"Content-Type {ctype!r}, the example is under {entry['media']!r}")
    if not headers.get("x-request-id"):
        problems.append("no X-Request-Id")
    how = ex.get("x-compare")
    text = body.decode("utf-8", "replace")
    if how == "metric-families":
        if metric_families(text) != metric_families(expected):
            problems.append(f"metric families {sorted(metric_families(text))}, the example has "
                            f"{sorted(metric_families(expected))}")
    elif how == "prefix":
        if not text.startswith(expected):
            problems.append(f"the answer does not start with {expected!r}")
    elif how == "subset":
        if not contains(yaml.safe_load(body), expected):
            problems.append(f"the answer does not hold {expected!r}")
    else:
        try:
            actual = json.loads(body)
        except ValueError:
            actual = text
        if actual != expected:
            problems.append(f"body {actual!r}\n  the example says {expected!r}")
    return problems


# ----------------------------------------------------------------------------- tests

def test_every_response_example_has_a_request():
    problems = [p for entry in EXAMPLES for p in example_problems(entry)]
    assert not problems, "\n".join(problems)
    # Not vacuous: the collection reaches operations' own examples and components'.
    assert len(EXAMPLES) >= 25, [e["where"] for e in EXAMPLES]
    # NotFound's example, reached through a $ref (from GET / 404 since the web page).
    assert any("components/responses/NotFound" in e["id"] for e in EXAMPLES)
    assert any(e["where"].startswith("GET /metrics 200") for e in EXAMPLES)


def test_an_example_without_a_request_is_caught():
    """The check above fails for an example added without x-request (on a copy)."""
    doc = copy.deepcopy(load_spec())
    bad = doc["components"]["responses"]["BadRequest"]["content"]["application/json"]["examples"]
    bad["addedLater"] = {"value": {"code": 3, "message": "x", "details": []}}
    problems = [p for e in response_examples(doc) for p in example_problems(e)]
    assert any("addedLater" in p and "no x-request" in p for p in problems), problems


@pytest.mark.parametrize("entry", [e for e in EXAMPLES if not example_problems(e)],
                         ids=lambda e: e["where"])
def test_example_is_the_real_answer(entry, rest, procs):
    xreq = entry["example"]["x-request"]
    if "gateway" in xreq:
        gw = start_gateway(procs, xreq["gateway"])
    else:
        gw = rest
    status, headers, body = send(gw.port, xreq)
    problems = compare(entry, status, headers, body)
    assert not problems, (f"{entry['where']}: the real answer differs from the example\n  "
                          + "\n  ".join(problems) + f"\n  (got {status} {headers} {body[:500]!r})")


def numpy_indices(values):
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return []
    return [int(i) for i in np.where(np.abs(data - data.mean()) > 2 * data.std())[0]]


def example_values(value):
    """The doubles a /detect request example holds (proto3 defaults for missing fields)."""
    metrics = value["metrics"] if isinstance(value, dict) else value
    out = []
    for m in metrics:
        v = m.get("value") if isinstance(m, dict) else m
        out.append(0.0 if v is None else float(v))
    assert all(math.isfinite(v) for v in out)
    return out


REQUEST_EXAMPLES = [(media, name, ex) for media, mobj in
                    load_spec()["paths"]["/detect"]["post"]["requestBody"]["content"].items()
                    for name, ex in mobj.get("examples", {}).items()]


@pytest.mark.parametrize("media,name,example", REQUEST_EXAMPLES,
                         ids=[f"{m} {n}" for m, n, _ in REQUEST_EXAMPLES])
def test_request_example_is_answered(rest, media, name, example):
    """Each /detect request example is a request the gateway serves, with numpy's answer."""
    body = json.dumps(example["value"]).encode()
    status, headers, answer = send(rest.port, {"method": "POST", "path": "/detect", "body": body.decode(),
                                               "headers": {"Content-Type": media}})
    assert status == 200, (name, status, answer)
    value = example["value"]
    if isinstance(value, dict) and value.get("options"):
        # numpy's and scipy's answer under the options, as the fixtures compute it.
        metrics = [{"name": m.get("name") or "", "value": v} for m, v in zip(value["metrics"], example_values(value))]
        expected = make_request(name, metrics, value["options"])["response"]
    else:
        expected = {"indices": numpy_indices(example_values(value))}
    assert json.loads(answer) == expected, (name, answer)
