#!/usr/bin/env python3
"""Write examples/metrics.json: the article's demo data as a proto3 JSON OutliersRequest.

    .venv/bin/python examples/make_metrics.py           # (re)write examples/metrics.json
    .venv/bin/python examples/make_metrics.py --check   # exit 1 if the file differs

The data are the article's Go client's: 1000 values, SplitMix64 seed 2020, value = 40*u
with u in [0, 1), outliers planted at [7] = 97.3, [113] = 92.1, [835] = 93.2 (the
generator of Tests/fixtures/make_fixtures.py, case "article-demo"); every metric is
named "CPU" at 2020-05-22T14:13:11Z. Values are written with Python's repr, the
shortest text that parses back to the exact same double, so any correct JSON parser
sees the very data numpy sees. One metric per line (curl -d @file drops the newlines,
which only ever stand between two tokens here).

    curl -s localhost:8080/detect -d @examples/metrics.json    ->  {"indices":[7,113,835]}
"""

import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
OUT = os.path.join(HERE, "metrics.json")
sys.path.insert(0, os.path.join(REPO, "Tests", "fixtures"))

SEED, COUNT, OFFSET, SCALE = 2020, 1000, 0.0, 40.0
PLANTED = [[7, 97.3], [113, 92.1], [835, 93.2]]
TIME, NAME = "2020-05-22T14:13:11Z", "CPU"
EXPECTED = [7, 113, 835]


def values():
    import make_fixtures  # needs numpy
    return [float(v) for v in make_fixtures.generate(SEED, COUNT, OFFSET, SCALE, PLANTED)]


def render(vals=None):
    vals = values() if vals is None else vals
    assert all(math.isfinite(v) for v in vals)
    lines = [f'{{"time":"{TIME}","name":"{NAME}","value":{v!r}}}' for v in vals]
    return '{"metrics":[\n' + ",\n".join(lines) + "\n]}\n"


def main(argv):
    text = render()
    if "--check" in argv:
        try:
            with open(OUT, encoding="utf-8") as f:
                same = f.read() == text
        except FileNotFoundError:
            same = False
        if not same:
            print(f"{os.path.relpath(OUT)} is stale: run examples/make_metrics.py", file=sys.stderr)
            return 1
        print(f"{os.path.relpath(OUT)} is up to date", file=sys.stderr)
        return 0
    with open(OUT, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    print(f"wrote {os.path.relpath(OUT)}: {COUNT} metrics, {len(text)} bytes", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
