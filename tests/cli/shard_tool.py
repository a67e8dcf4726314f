#!/usr/bin/env python3
"""Helpers for the st-shard command tests (python3 stdlib only).

  shard_tool.py check MODEL PARTS TP [--no-pack] [--replicate-embeddings]
      Recomputes every part tensor of PARTS/part{r}-of-{TP}/ from MODEL with its own, independent
      statement of MindIE's split rules (see st-shard(1)) and compares names, dtypes, shapes and
      bytes. Prints one line per rank; exits 1 on the first mismatch.
  shard_tool.py split-hf MODEL OUT N
      Rewrites MODEL (an HF directory with model.safetensors) as N shards
      model-0000i-of-0000N.safetensors plus model.safetensors.index.json, side files copied.
  shard_tool.py fake-stats MODEL OUT
      Writes an activation statistics file (libst/format/stats.hpp format) with made-up ranges for every
      decoder linear of MODEL, so st-quant-w8a8 --stats can make a static W8A8 checkpoint to shard
      without a forward pass. Values are deterministic; they only need to be plausible.
"""
import json
import os
import struct
import sys

DT_SIZE = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
           "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
ROW = {"weight", "bias", "deq_scale", "quant_bias", "weight_scale", "weight_offset"}
PER_TENSOR = {"input_scale", "input_offset"}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        out = {}
        for name, e in header.items():
            if name == "__metadata__":
                continue
            b, end = e["data_offsets"]
            f.seek(base + b)
            out[name] = (e["dtype"], e["shape"], f.read(end - b))
    return out


def weights_of(d):
    files = sorted(x for x in os.listdir(d) if x.endswith(".safetensors"))
    tensors = {}
    for x in files:
        tensors.update(read_safetensors(os.path.join(d, x)))
    return tensors


def rows(t, r0, r1):
    dt, shape, data = t
    rb = len(data) // shape[0]
    return data[r0 * rb:r1 * rb]


def cols(t, c0, c1):
    dt, shape, data = t
    es = DT_SIZE[dt]
    inner = 1
    for d in shape[2:]:
        inner *= d
    rb = shape[1] * inner * es
    return b"".join(data[i * rb + c0 * inner * es:i * rb + c1 * inner * es] for i in range(shape[0]))


def rule(name, shape, cfg, tp, replicate_embeddings):
    """(kind, dim, chunks) for one tensor: kind in replicate / rank0 / split."""
    parts = name.split(".")
    module, suffix = (parts[-2] if len(parts) > 1 else ""), parts[-1]
    kv = cfg.get("num_key_value_heads") or cfg["num_attention_heads"]
    if module in ("fa_q", "fa_k", "fa_v"):
        n = shape[0]
        return ("split", 0, min(n, tp)) if min(n, tp) > 1 else ("replicate", 0, 1)
    if module == "embed_tokens":
        return ("replicate", 0, 1) if replicate_embeddings or tp == 1 else ("split", 0, tp)
    column = {"q_proj": tp, "q_b_proj": tp, "kv_b_proj": tp, "gate_proj": tp, "up_proj": tp, "lm_head": tp,
              "k_proj": min(kv, tp), "v_proj": min(kv, tp)}
    if module in column:
        if suffix in PER_TENSOR:
            return ("replicate", 0, 1)
        c = column[module]
        return ("split", 0, c) if c > 1 else ("replicate", 0, 1)
    if module in ("o_proj", "down_proj"):
        if suffix == "weight":
            return ("split", 1, tp) if tp > 1 else ("replicate", 0, 1)
        if suffix in ("bias", "quant_bias"):
            return ("rank0", 0, 1)
        return ("replicate", 0, 1)
    return ("replicate", 0, 1)


def piece(t, kind, dim, chunks, rank, tp):
    dt, shape, data = t
    if kind == "replicate":
        return data
    if kind == "rank0":
        return data if rank == 0 else bytes(len(data))
    c = rank * chunks // tp
    n = shape[dim] // chunks
    return rows(t, c * n, (c + 1) * n) if dim == 0 else cols(t, c * n, (c + 1) * n)


def piece_shape(shape, kind, dim, chunks):
    s = list(shape)
    if kind == "split":
        s[dim] //= chunks
    return s


def expected_part(model, cfg, tp, rank, pack, rep_emb):
    out = {}
    packs = {"q_proj": ("query_key_value", 0), "k_proj": ("query_key_value", 1), "v_proj": ("query_key_value", 2),
             "gate_proj": ("gate_up_proj", 0), "up_proj": ("gate_up_proj", 1)}
    groups = {}
    for name, t in model.items():
        kind, dim, chunks = rule(name, t[1], cfg, tp, rep_emb)
        parts = name.split(".")
        module, suffix = (parts[-2] if len(parts) > 1 else ""), parts[-1]
        if pack and module in packs and (suffix in ROW or suffix in PER_TENSOR) and len(parts) > 2:
            packed, idx = packs[module]
            partners = [m for m, (p, _) in packs.items() if p == packed]
            siblings = [".".join(parts[:-2] + [m, suffix]) for m in partners]
            if sum(s in model for s in siblings) > 1:
                key = ".".join(parts[:-2] + [packed, suffix])
                groups.setdefault(key, {})[idx] = (t, kind, dim, chunks, suffix in PER_TENSOR)
                continue
        out[name] = (t[0], piece_shape(t[1], kind, dim, chunks), piece(t, kind, dim, chunks, rank, tp))
    for key, members in groups.items():
        first = members[0]
        if first[4]:  # shared per-tensor parameter, stored once
            out[key] = (first[0][0], first[0][1], first[0][2])
            continue
        data = b"".join(piece(m[0], m[1], m[2], m[3], rank, tp) for _, m in sorted(members.items()))
        shape = piece_shape(first[0][1], first[1], first[2], first[3])
        shape[0] = sum(piece_shape(m[0][1], m[1], m[2], m[3])[0] for m in members.values())
        out[key] = (first[0][0], shape, data)
    return out


def check(model_dir, parts_dir, tp, pack, rep_emb):
    model = weights_of(model_dir)
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    for r in range(tp):
        pdir = os.path.join(parts_dir, "part%d-of-%d" % (r, tp))
        got = weights_of(pdir)
        want = expected_part(model, cfg, tp, r, pack, rep_emb)
        if set(got) != set(want):
            print("rank %d: tensor names differ: only in part %s, missing %s" %
                  (r, sorted(set(got) - set(want))[:5], sorted(set(want) - set(got))[:5]))
            return 1
        for name in sorted(want):
            g, w = got[name], want[name]
            if g[0] != w[0] or list(g[1]) != list(w[1]) or g[2] != w[2]:
                print("rank %d: %s: got %s %s, want %s %s%s" % (r, name, g[0], g[1], w[0], w[1],
                                                              "" if g[2] == w[2] else " (bytes differ)"))
                return 1
        print("rank %d: %d tensors match the rules" % (r, len(want)))
    return 0


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    off = 0
    blobs = []
    for name, (dt, shape, data) in tensors:
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
        blobs.append(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


def fake_stats(model_dir, out):
    model = weights_of(model_dir)
    linear_modules = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "q_a_proj",
                      "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj"}
    tensors = []
    for i, name in enumerate(sorted(model)):
        parts = name.split(".")
        if parts[-1] != "weight" or len(parts) < 2 or parts[-2] not in linear_modules or ".layers." not in name:
            continue
        p = ".".join(parts[:-1])
        k = model[name][1][1]
        lo, hi = -1.5 - (i % 7) * 0.25, 2.0 + (i % 5) * 0.5
        tensors.append((p + ".input_min", ("F32", [1], struct.pack("<f", lo))))
        tensors.append((p + ".input_max", ("F32", [1], struct.pack("<f", hi))))
        tensors.append((p + ".input_absmax", ("F32", [k], struct.pack("<%df" % k, *[max(-lo, hi)] * k))))
        tensors.append((p + ".input_sumsq", ("F64", [k], struct.pack("<%dd" % k, *[float(j + 1) for j in range(k)]))))
        tensors.append((p + ".tokens", ("I64", [1], struct.pack("<q", 1000))))
    write_safetensors(out, tensors, {"st.stats.version": "1", "st.stats.samples": "0", "st.stats.seq_len": "0",
                                     "st.stats.model": os.path.basename(model_dir.rstrip("/"))})
    return 0


def split_hf(model_dir, out, n):
    path = os.path.join(model_dir, "model.safetensors")
    with open(path, "rb") as f:
        hl = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(hl))
    meta = header.get("__metadata__", {})
    tensors = weights_of(model_dir)
    names = sorted(tensors, key=lambda k: header[k]["data_offsets"][0])
    os.makedirs(out)
    weight_map, total = {}, 0
    per = (len(names) + n - 1) // n
    for i in range(n):
        fname = "model-%05d-of-%05d.safetensors" % (i + 1, n)
        chunk = names[i * per:(i + 1) * per]
        write_safetensors(os.path.join(out, fname), [(k, tensors[k]) for k in chunk], meta)
        for k in chunk:
            weight_map[k] = fname
            total += len(tensors[k][2])
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2, sort_keys=True)
        f.write("\n")
    for x in os.listdir(model_dir):
        if x.endswith(".json") and x != "model.safetensors.index.json":
            with open(os.path.join(model_dir, x), "rb") as a, open(os.path.join(out, x), "wb") as b:
                b.write(a.read())
    return 0


def main(argv):
    if len(argv) == 5 and argv[1] == "split-hf":
        return split_hf(argv[2], argv[3], int(argv[4]))
    if len(argv) >= 5 and argv[1] == "check":
        return check(argv[2], argv[3], int(argv[4]), "--no-pack" not in argv, "--replicate-embeddings" in argv)
    if len(argv) == 4 and argv[1] == "fake-stats":
        return fake_stats(argv[2], argv[3])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
