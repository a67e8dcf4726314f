#!/usr/bin/env python3
"""Prints "sha256  relative/path" for every file under ROOT, sorted, for the output manifest.

The only normalisation: the absolute prefix ROOT of the run's scratch directory, wherever it
appears (st-calibrate records the realpath of its data in st.stats.data; messages name files),
is replaced by "<ROOT>", so the manifest does not depend on where the test runs. In a
.safetensors file it is replaced inside the header's JSON text only, the data bytes are hashed
as they are. Lines of --json outputs whose key names a time, a rate, the thread count or
the BLAS kernel (they vary by machine) are dropped.
"""
import hashlib
import json
import os
import re
import struct
import sys

TIMING_KEY = re.compile(r'"[^"]*(seconds|second"|per_s|elapsed|wall|threads|blas_core|gflop)[^"]*"\s*:')


def normalised(path, root):
    with open(path, "rb") as f:
        raw = f.read()
    rootb = root.encode()
    if path.endswith(".safetensors") and len(raw) >= 8:
        n = struct.unpack("<Q", raw[:8])[0]
        if 8 + n <= len(raw):
            header = raw[8:8 + n].replace(rootb, b"<ROOT>")
            return raw[:8] + header + raw[8 + n:]
    text = raw.replace(rootb, b"<ROOT>")
    if path.endswith((".json", ".stdout")):
        lines = text.split(b"\n")
        text = b"\n".join(l for l in lines if not TIMING_KEY.search(l.decode("utf-8", "replace")))
    return text


def main():
    root = os.path.realpath(sys.argv[1])
    rows = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            rows.append((rel, hashlib.sha256(normalised(full, root)).hexdigest()))
    for rel, digest in sorted(rows):
        print(f"{digest}  {rel}")


if __name__ == "__main__":
    main()
