#!/usr/bin/env python3
"""Compare an st-calibrate stats file with a reference calibstats_*.json (min, max, per-channel
absmax; relative tolerance). Prints the worst relative error; exit 1 when over tolerance or when a
reference linear is missing. Usage: calibrate_compare.py STATS.safetensors REF.json [TOL]"""
import json
import struct
import sys


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        buf = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        fmt = {"F32": "f", "F64": "d", "I64": "q"}[t["dtype"]]
        size = struct.calcsize(fmt)
        out[name] = list(struct.unpack("<%d%s" % ((e - b) // size, fmt), buf[b:e]))
    return out, header.get("__metadata__", {})


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-12)


def main():
    stats, meta = read_safetensors(sys.argv[1])
    ref = json.load(open(sys.argv[2]))
    tol = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-3
    worst, where = 0.0, ""
    for lin, r in ref.items():
        for key, want in (("input_min", [r["min"]]), ("input_max", [r["max"]]), ("input_absmax", r["absmax_per_channel"])):
            name = lin + "." + key
            if name not in stats:
                print("missing: " + name)
                return 1
            got = stats[name]
            if len(got) != len(want):
                print("length mismatch: %s %d != %d" % (name, len(got), len(want)))
                return 1
            for i, (g, w) in enumerate(zip(got, want)):
                e = rel(g, w)
                if e > worst:
                    worst, where = e, "%s[%d] %.9g vs %.9g" % (name, i, g, w)
    print("linears %d  worst relative error %.3g  (%s)" % (len(ref), worst, where))
    return 0 if worst <= tol else 1


sys.exit(main())
