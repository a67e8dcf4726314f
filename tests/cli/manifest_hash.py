#!/usr/bin/env python3
"""Prints "sha256  relative/path" for every file under ROOT, sorted, for the output manifest.

usage: manifest_hash.py ROOT [FIXTURES]

The only normalisation: the absolute prefixes ROOT of the run's scratch directory and FIXTURES
of the fixtures, wherever they appear (st-calibrate records the realpaths of its model and data
in st.stats.model / st.stats.data; messages name files), are replaced by "<ROOT>" and
"<FIXTURES>", so the manifest does not depend on where the test or the checkout runs. In a
.safetensors file it is replaced inside the header's JSON text only, the data bytes are hashed
as they are; a header that held such a path is hashed without its length and padding, which
depend on the path's length. Lines of --json outputs whose key names a time, a rate, the thread count or
the BLAS kernel (they vary by machine) are dropped.
"""
import hashlib
import json
import os
import re
import struct
import sys

TIMING_KEY = re.compile(r'"[^"]*(seconds|second"|per_s|elapsed|wall|threads|blas_core|gflop)[^"]*"\s*:')


def replaced(data, prefixes):
    for prefix, name in prefixes:
        data = data.replace(prefix.encode(), name)
    return data


def normalised(path, prefixes):
    with open(path, "rb") as f:
        raw = f.read()
    if path.endswith((".safetensors", ".st")) and len(raw) >= 8:
        n = struct.unpack("<Q", raw[:8])[0]
        if 8 + n <= len(raw):
            header = raw[8:8 + n]
            new = replaced(header, prefixes)
            if new == header:
                return raw
            # The header's length and its space padding follow the length of the paths replaced.
            return new.rstrip(b" ") + raw[8 + n:]
    text = replaced(raw, prefixes)
    if path.endswith((".json", ".stdout")):
        lines = text.split(b"\n")
        text = b"\n".join(l for l in lines if not TIMING_KEY.search(l.decode("utf-8", "replace")))
    return text


def main():
    root = os.path.realpath(sys.argv[1])
    prefixes = [(root, b"<ROOT>")]
    if len(sys.argv) > 2:
        prefixes.insert(0, (os.path.realpath(sys.argv[2]), b"<FIXTURES>"))
    rows = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            rows.append((rel, hashlib.sha256(normalised(full, prefixes)).hexdigest()))
    for rel, digest in sorted(rows):
        print(f"{digest}  {rel}")


if __name__ == "__main__":
    main()
