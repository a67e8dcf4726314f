#!/usr/bin/env python3
"""Runs check_consumers.py on every output of a conformance run and compares the rules each output
breaks with the expected-failure list.

usage: matrix.py OUTPUTS EXPECTED [--table FILE]

OUTPUTS: lines "NAME PATH FLOAT_DIR" (what conformance.sh built). EXPECTED: lines
"NAMES CONSUMER RULE  # why" (NAMES comma-separated; CONSUMER both / vllm-ascend / mindie as the
checker tags the rule). Every violated rule must be listed, and every listed one must still be
violated, so the list shrinks as fixes land. Exit 0 when they match, 1 otherwise. --table writes
which output passes which consumer.
"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from check_consumers import run  # noqa: E402


def read_expected(path):
    expected = {}
    for n, line in enumerate(open(path), 1):
        body, _, why = line.partition("#")
        fields = body.split()
        if not fields:
            continue
        if len(fields) != 3 or not why.strip():
            raise SystemExit(f"{path}:{n}: want 'NAMES CONSUMER RULE  # why'")
        for name in fields[0].split(","):
            expected[(name, fields[1], fields[2])] = why.strip()
    return expected


def main(argv):
    outputs = [line.split() for line in open(argv[0]) if line.strip()]
    expected = read_expected(argv[1])
    table_path = argv[argv.index("--table") + 1] if "--table" in argv else None
    got = {}
    for name, path, float_dir in outputs:
        for line in run({"output": path, "consumer": "both", "float": float_dir}):
            consumer, rule = line.split(":", 1)[0].split()
            got.setdefault((name, consumer, rule), line)
    names = {o[0] for o in outputs}
    problems = []
    for key, line in sorted(got.items()):
        if key not in expected:
            problems.append(f"new violation {' '.join(key)}: {line}")
    for key, why in sorted(expected.items()):
        if key[0] in names and key not in got:
            problems.append(f"expected failure no longer fails (remove it from the list): {' '.join(key)}  # {why}")
        if key[0] not in names:
            problems.append(f"expected-failure entry names no output of this run: {' '.join(key)}")
    rows = []
    for name, _, _ in outputs:
        for consumer in ("vllm-ascend", "mindie"):
            rules = sorted({r for (n, c, r) in got if n == name and c in (consumer, "both")})
            rows.append(f"{name:10} {consumer:12} {'PASS' if not rules else 'FAIL ' + ' '.join(rules)}")
    if table_path:
        with open(table_path, "w") as f:
            f.write("\n".join(rows) + "\n")
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
