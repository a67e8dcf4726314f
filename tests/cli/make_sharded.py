#!/usr/bin/env python3
"""Splits one safetensors file into an HF sharded checkpoint directory (stdlib only):
model-0000i-of-0000N.safetensors (tensors dealt round-robin in offset order) plus
model.safetensors.index.json, and copies config.json from beside the input when present.

    make_sharded.py MODEL.safetensors OUT_DIR N
"""
import json
import os
import shutil
import struct
import sys


def read_header(f):
    (n,) = struct.unpack("<Q", f.read(8))
    header = json.loads(f.read(n))
    return header, 8 + n


def write_shard(path, tensors, metadata):
    """tensors: list of (name, dtype, shape, bytes), written in order."""
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    offset = 0
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)))
        out.write(text)
        for _, _, _, data in tensors:
            out.write(data)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    src, out_dir, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.makedirs(out_dir, exist_ok=True)
    with open(src, "rb") as f:
        header, start = read_header(f)
        metadata = header.pop("__metadata__", None)
        entries = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
        shards = [[] for _ in range(n)]
        for i, (name, e) in enumerate(entries):
            begin, end = e["data_offsets"]
            f.seek(start + begin)
            shards[i % n].append((name, e["dtype"], e["shape"], f.read(end - begin)))
    weight_map, total = {}, 0
    for s, tensors in enumerate(shards):
        fname = "model-%05d-of-%05d.safetensors" % (s + 1, n)
        write_shard(os.path.join(out_dir, fname), tensors, metadata)
        for name, _, _, data in tensors:
            weight_map[name] = fname
            total += len(data)
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")
    config = os.path.join(os.path.dirname(os.path.abspath(src)), "config.json")
    if os.path.exists(config):
        shutil.copy(config, os.path.join(out_dir, "config.json"))


if __name__ == "__main__":
    main()
