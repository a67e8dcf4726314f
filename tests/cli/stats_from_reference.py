#!/usr/bin/env python3
"""Write an st-calibrate-format statistics file from reference/calibstats_*.json (stdlib only).

usage: stats_from_reference.py CALIBSTATS.json OUT.safetensors [--experts-from-shared]

The reference has per-linear min, max and per-channel absmax; sum of squares is unknown and
written as zeros; tokens = 64 * 512. With --experts-from-shared, routed experts
(mlp.experts.J.*) that the reference does not cover get their layer's shared-expert statistics
(the same input: the post-attention norm output), for the given number of experts.
"""
import json
import struct
import sys


def write_safetensors(path, tensors, metadata):
    """tensors: list of (name, dtype, shape, bytes)."""
    header = {"__metadata__": metadata}
    off = 0
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for _, _, _, data in tensors:
            f.write(data)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    experts = 0
    for a in sys.argv[1:]:
        if a.startswith("--experts-from-shared="):
            experts = int(a.split("=", 1)[1])
    ref = json.load(open(args[0]))
    linears = {k: v for k, v in ref.items() if not k.startswith("_")}
    if experts:
        for prefix in list(linears):
            marker = ".mlp.shared_experts."
            if marker in prefix:
                layer, proj = prefix.split(marker)
                for j in range(experts):
                    linears.setdefault(f"{layer}.mlp.experts.{j}.{proj}", linears[prefix])
    tensors = []
    for prefix in sorted(linears):
        s = linears[prefix]
        k = len(s["absmax_per_channel"])
        tensors.append((prefix + ".input_min", "F32", [1], struct.pack("<f", s["min"])))
        tensors.append((prefix + ".input_max", "F32", [1], struct.pack("<f", s["max"])))
        tensors.append((prefix + ".input_absmax", "F32", [k], struct.pack(f"<{k}f", *s["absmax_per_channel"])))
        tensors.append((prefix + ".input_sumsq", "F64", [k], bytes(8 * k)))
        tensors.append((prefix + ".tokens", "I64", [1], struct.pack("<q", 64 * 512)))
    write_safetensors(args[1], tensors, {"st.stats.version": "1", "st.stats.source": "reference calibstats"})


if __name__ == "__main__":
    main()
