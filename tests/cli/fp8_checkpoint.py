#!/usr/bin/env python3
"""DeepSeek-style FP8 checkpoints for the tests, and an independent check of st-cast (stdlib only).

    fp8_checkpoint.py make SRC_DIR OUT_DIR [--shards N] [--stream FILE]
        Writes OUT_DIR as DeepSeek-V3 / R1 ship their release (README_WEIGHTS.md, inference/
        kernel.py weight_quant): every decoder linear weight except the MoE router (mlp.gate) as
        F8_E4M3 W [n, k] plus F32 W_scale_inv [ceil(n/128), ceil(k/128)], where a block's
        scale is max|block| / 448 and W = e4m3(w / scale) rounded to nearest even; embeddings,
        lm_head, norms and the router BF16; e_score_correction_bias F32. Files are written as
        safetensors' own writer orders them (wider dtypes first, then by name), split by layer
        into N shards with model.safetensors.index.json (N = 1: one model.safetensors). config.json gets torch_dtype/dtype
        "bfloat16" and DeepSeek's quantization_config. --stream also writes every tensor as one
        safetensors stream with the side files in __metadata__ ("st.file.NAME"), as st-tools' streams.

    fp8_checkpoint.py fault FP8_DIR OUT_DIR no-scale|bad-shape|orphan|nan-scale
        Copies a one-file FP8 checkpoint with one fault: the first weight's scale_inv missing,
        shaped [1, 1], a scale_inv for the BF16 embeddings (an orphan), or a NaN block scale.

    fp8_checkpoint.py check-cast FP8_DIR CAST_DIR bf16|f16|f32
        Recomputes every tensor of the cast from the FP8 checkpoint with the reference formula
        (fp8 -> fp32, times scale_inv as an fp32 product, rounded to the target dtype,
        round-half-to-even; 16-bit tensors converted the same way; F32 tensors kept) and
        compares bytes. Prints "ok N tensors" or the first difference and exits 1.
"""
import bisect
import json
import math
import os
import re
import shutil
import struct
import sys

BLOCK = 128
SIZES = {"F8_E4M3": 1, "BF16": 2, "F16": 2, "F32": 4}


# ---- safetensors ----

def read_safetensors(path):
    """{name: (dtype, shape, bytes)} in file order."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    header.pop("__metadata__", None)
    out = {}
    for name, e in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        b, end = e["data_offsets"]
        out[name] = (e["dtype"], e["shape"], data[b:end])
    return out


def read_checkpoint(d):
    index = os.path.join(d, "model.safetensors.index.json")
    files = ["model.safetensors"]
    if os.path.exists(index):
        files = sorted(set(json.load(open(index))["weight_map"].values()))
    out = {}
    for f in files:
        out.update(read_safetensors(os.path.join(d, f)))
    return out


def write_safetensors(path, tensors, metadata=None):
    """tensors: {name: (dtype, shape, bytes)}, written in safetensors' writer order."""
    order = sorted(tensors, key=lambda n: (-SIZES[tensors[n][0]], n))
    header, offset = {"__metadata__": dict(metadata or {"format": "pt"})}, 0
    for name in order:
        dtype, shape, data = tensors[name]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for name in order:
            f.write(tensors[name][2])


# ---- numbers ----

def f32(x):
    """Rounds a double to the nearest fp32 (half to even)."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def f32s(xs):
    """Rounds doubles to the nearest fp32 values, all at once."""
    return struct.unpack("<%df" % len(xs), struct.pack("<%df" % len(xs), *xs))


def f32_bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def bf16_round(x):
    """fp32 value -> BF16 bits, round half to even."""
    u = f32_bits(x)
    if (u & 0x7FFFFFFF) > 0x7F800000:
        return (u >> 16) | 0x40
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) & 0xFFFF


def e4m3_value(b):
    sign = -1.0 if b & 0x80 else 1.0
    e, m = (b >> 3) & 0xF, b & 7
    if e == 0xF and m == 7:
        return math.nan
    return sign * (m / 8.0 * 2.0 ** -6 if e == 0 else (1 + m / 8.0) * 2.0 ** (e - 7))


E4M3 = [e4m3_value(b) for b in range(256)]
POSITIVE = sorted((E4M3[b], b) for b in range(0x7F))  # 0 .. 448
POSITIVE_VALUES = [v for v, _ in POSITIVE]


# Midpoints between neighbouring positive E4M3 values: a value rounds up past a midpoint.
MIDPOINTS = [(POSITIVE_VALUES[i] + POSITIVE_VALUES[i + 1]) / 2 for i in range(len(POSITIVE_VALUES) - 1)]


def e4m3_round(x):
    """Nearest F8_E4M3 byte to x (|x| <= 464), ties to the even code."""
    a = min(abs(x), 448.0)
    i = bisect.bisect_left(MIDPOINTS, a)  # values[i] is the nearest unless a is past MIDPOINTS[i]
    if i < len(MIDPOINTS) and a == MIDPOINTS[i] and POSITIVE[i][1] % 2:
        i += 1  # a tie goes to the even code
    code = POSITIVE[i][1]
    return code | (0x80 if x < 0 and code else 0)


def floats(dtype, data):
    if dtype == "F16":
        return list(struct.unpack("<%de" % (len(data) // 2), data))
    if dtype == "BF16":
        return [struct.unpack("<f", struct.pack("<I", h << 16))[0] for h in struct.unpack("<%dH" % (len(data) // 2), data)]
    if dtype == "F32":
        return list(struct.unpack("<%df" % (len(data) // 4), data))
    raise ValueError(dtype)


def encode(dtype, values):
    if dtype == "BF16":
        return struct.pack("<%dH" % len(values), *[bf16_round(v) for v in values])
    if dtype == "F16":
        return struct.pack("<%de" % len(values), *values)  # struct rounds half to even
    if dtype == "F32":
        return struct.pack("<%df" % len(values), *values)
    raise ValueError(dtype)


# ---- make ----

def fp8_linear(name):
    """DeepSeek-V3's FP8 tensors: decoder linear weights, not the router, not eh_proj."""
    return (re.match(r"model\.layers\.\d+\.(self_attn|mlp)\..*_proj\.weight$", name) is not None
            or re.match(r"model\.layers\.\d+\.self_attn\.kv_a_proj_with_mqa\.weight$", name) is not None)


def quantize_blocks(shape, values):
    n, k = shape
    bn, bk = -(-n // BLOCK), -(-k // BLOCK)
    q = bytearray(n * k)
    scales = []
    for i in range(bn):
        rows = range(i * BLOCK, min(n, (i + 1) * BLOCK))
        for j in range(bk):
            c0, c1 = j * BLOCK, min(k, (j + 1) * BLOCK)
            block = [values[r * k + c] for r in rows for c in range(c0, c1)]
            amax = max(abs(v) for v in block)
            s = f32(amax / 448.0) if amax > 0 else 1.0
            scales.append(s)
            quotients = f32s([v / s for v in block])  # fp32 division, rounded to nearest even
            for idx, r in enumerate(rows):
                width = c1 - c0
                q[r * k + c0:r * k + c1] = bytes(e4m3_round(x) for x in quotients[idx * width:(idx + 1) * width])
    return bytes(q), struct.pack("<%df" % len(scales), *scales), [bn, bk]


def make(src, out, shards, stream):
    os.makedirs(out)
    tensors = read_checkpoint(src)
    layers = sorted({int(m.group(1)) for m in (re.match(r"model\.layers\.(\d+)\.", n) for n in tensors) if m})
    per_shard = -(-len(layers) // shards) if layers else 1
    files = [dict() for _ in range(shards)]
    for name, (dtype, shape, data) in tensors.items():
        m = re.match(r"model\.layers\.(\d+)\.", name)
        shard = min(shards - 1, layers.index(int(m.group(1))) // per_shard) if m else (0 if "embed" in name else shards - 1)
        values = floats(dtype, data)
        if fp8_linear(name):
            q, s, s_shape = quantize_blocks(shape, values)
            files[shard][name] = ("F8_E4M3", shape, q)
            files[shard][name + "_scale_inv"] = ("F32", s_shape, s)
        elif name.endswith("e_score_correction_bias"):
            files[shard][name] = ("F32", shape, encode("F32", values))
        else:
            files[shard][name] = ("BF16", shape, encode("BF16", values))
    weight_map = {}
    for i, f in enumerate(files):
        fname = "model.safetensors" if shards == 1 else "model-%05d-of-%05d.safetensors" % (i + 1, shards)
        write_safetensors(os.path.join(out, fname), f)
        weight_map.update({n: fname for n in f})
    total = sum(len(t[2]) for f in files for t in f.values())
    if shards > 1:
        with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)
    config = json.load(open(os.path.join(src, "config.json")))
    for key in ("torch_dtype", "dtype"):
        if key in config:
            config[key] = "bfloat16"
    config["quantization_config"] = {"activation_scheme": "dynamic", "fmt": "e4m3", "quant_method": "fp8",
                                     "weight_block_size": [BLOCK, BLOCK]}
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    for side in sorted(os.listdir(src)):
        if side.endswith(".json") and side != "config.json" and not side.endswith(".index.json"):
            shutil.copy(os.path.join(src, side), os.path.join(out, side))
    if stream:
        metadata = {"format": "pt"}
        for side in sorted(os.listdir(out)):
            if side.endswith(".json") and not side.endswith(".index.json"):
                metadata["st.file." + side] = open(os.path.join(out, side)).read()
        write_safetensors(stream, {n: t for f in files for n, t in f.items()}, metadata)


# ---- faults ----

def fault(src, out, kind):
    shutil.copytree(src, out)
    path = os.path.join(out, "model.safetensors")
    tensors = read_safetensors(path)
    scale = sorted(n for n in tensors if n.endswith("_scale_inv"))[0]
    if kind == "no-scale":
        del tensors[scale]
    elif kind == "bad-shape":
        tensors[scale] = ("F32", [1, 1], struct.pack("<f", 1.0))
    elif kind == "orphan":
        tensors["model.embed_tokens.weight_scale_inv"] = ("F32", [1, 1], struct.pack("<f", 1.0))
    elif kind == "nan-scale":
        dtype, shape, data = tensors[scale]
        tensors[scale] = (dtype, shape, struct.pack("<f", math.nan) + data[4:])
    else:
        sys.exit("unknown fault " + kind)
    write_safetensors(path, tensors)
    print(scale if kind != "orphan" else "model.embed_tokens.weight_scale_inv")


# ---- check-cast ----

def expected_cast(fp8, name, target):
    dtype, shape, data = fp8[name]
    if dtype == "F8_E4M3":
        _, s_shape, s_data = fp8[name + "_scale_inv"]
        scales = floats("F32", s_data)
        n, k = shape
        bk = s_shape[1]
        # e4m3 * scale is exact in a double (4 + 24 significant bits): f32() is the fp32 product.
        values = f32s([E4M3[data[r * k + c]] * scales[(r // BLOCK) * bk + c // BLOCK] for r in range(n) for c in range(k)])
        return encode(target, values)
    if dtype == "F32":
        return data
    return encode(target, floats(dtype, data))


def check_cast(fp8_dir, cast_dir, to):
    target = {"bf16": "BF16", "f16": "F16", "f32": "F32"}[to]
    fp8, cast = read_checkpoint(fp8_dir), read_checkpoint(cast_dir)
    want = [n for n in fp8 if not n.endswith("_scale_inv")]
    if sorted(want) != sorted(cast):
        sys.exit("tensor names differ: %s" % sorted(set(want) ^ set(cast))[:5])
    for name in want:
        dtype, shape, data = cast[name]
        want_dtype = "F32" if fp8[name][0] == "F32" else target
        if dtype != want_dtype or shape != fp8[name][1]:
            print("%s: %s %s, expected %s %s" % (name, dtype, shape, want_dtype, fp8[name][1]))
            sys.exit(1)
        if data != expected_cast(fp8, name, target):
            print("%s: bytes differ from the reference formula" % name)
            sys.exit(1)
    print("ok %d tensors" % len(want))


def main():
    args = sys.argv[1:]
    if len(args) >= 3 and args[0] == "make":
        shards = int(args[args.index("--shards") + 1]) if "--shards" in args else 2
        stream = args[args.index("--stream") + 1] if "--stream" in args else None
        make(args[1], args[2], shards, stream)
    elif len(args) == 4 and args[0] == "fault":
        fault(args[1], args[2], args[3])
    elif len(args) == 4 and args[0] == "check-cast":
        check_cast(args[1], args[2], args[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
