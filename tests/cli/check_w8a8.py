#!/usr/bin/env python3
"""Independent check of st-quant-w8a8 output against DESIGN.md's formulas (stdlib only).

usage: check_w8a8.py FLOAT_MODEL OUT [--stats STATS] [--float REGEX] [--dynamic REGEX] [--fa] [--smoothed]

FLOAT_MODEL: a .safetensors file or a directory with model.safetensors.
OUT: the quantized directory, or a stream file (description in __metadata__).
--stats: the statistics the static output was made from (absent: W8A8_DYNAMIC expected).
--float REGEX: linear prefixes expected to stay float (besides the MoE router mlp.gate and MLA's kv_b_proj).
--dynamic REGEX: with --stats, linear prefixes expected W8A8_DYNAMIC (a mixed file; model_quant_type
W8A8_DYNAMIC on MLA models, W8A8 otherwise).
--fa: attention scales expected (FAQuant; MLA: FAKQuant) from the statistics' A.*_absmax.
A routed expert absent from the statistics borrows, for gate/up, its layer's shared-expert range
(else the union of the layer's experts), for down_proj the union of the layer's experts' down_proj.

Recomputes from the float weights, in fp32 with round-half-to-even, every quantized tensor:
weight, weight_scale, weight_offset, and for static W8A8 input_scale, input_offset (fused groups
from the union of their ranges), deq_scale (I64-packed fp32 for fp16 models, F32 for bf16) and
quant_bias; checks every float tensor (the float `.bias` of a quantized linear too, kept as msModelSlim
keeps it) is byte-identical and typed FLOAT, every decoder linear quantized unless
expected float, and the description types every tensor. Exit 0 when all match, 1 otherwise.

--smoothed (st-quant-w8a8's default anti-outlier smoothing, Llama-style models): the quantized
weights are of W' = W diag(s) with s unknown, so instead: every row's max |W_q| is 127 (weight_scale
= max|W'|/127); where W' follows a norm (q/k/v after input_layernorm, gate/up after
post_attention_layernorm) W_q[r,j] * weight_scale[r] * norm'[j] reproduces W[r,j] * norm[j] within
half a step (the function is unchanged); deq_scale and quant_bias follow from the stored
input_scale, input_offset, weight_scale and W_q; only *layernorm.weight float tensors may differ.
"""
import json
import math
import os
import re
import struct
import sys

EPS = 2.0 ** -23


def read_header(path):
    f = open(path, "rb")
    n = struct.unpack("<Q", f.read(8))[0]
    h = json.loads(f.read(n))
    return f, 8 + n, h


class ST:
    """A safetensors file: header plus raw tensor bytes on demand."""

    def __init__(self, path):
        self.path = path
        self.f, self.start, h = read_header(path)
        self.meta = h.pop("__metadata__", {})
        self.t = h

    def raw(self, name):
        b, e = self.t[name]["data_offsets"]
        self.f.seek(self.start + b)
        return self.f.read(e - b)


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def to_floats(dtype, raw):
    n = len(raw) // {"F16": 2, "BF16": 2, "F32": 4}[dtype]
    if dtype == "F16":
        return list(struct.unpack(f"<{n}e", raw))
    if dtype == "F32":
        return list(struct.unpack(f"<{n}f", raw))
    wide = bytearray(4 * n)
    wide[2::4] = raw[0::2]
    wide[3::4] = raw[1::2]
    return list(struct.unpack(f"<{n}f", bytes(wide)))


def round_dtype(dtype, x):
    if dtype == "F16":
        return struct.unpack("<e", struct.pack("<e", x))[0]
    if dtype == "BF16":
        bits = struct.unpack("<I", struct.pack("<f", x))[0]
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16 << 16  # nearest even
        return struct.unpack("<f", struct.pack("<I", bits))[0]
    return f32(x)


def q_elem(x, s):
    """clamp(nearbyint(f32(x / s))) with x, s fp32: the fp64 quotient, rounded to fp32 only
    where that can change the result (near a .5 tie)."""
    d = x / s
    fr = d - math.floor(d)
    if abs(fr - 0.5) < 1e-5:
        d = f32(d)
    return max(-128, min(127, round(d)))


def group_of(prefix, mla):
    parent, _, leaf = prefix.rpartition(".")
    if mla and leaf in ("q_a_proj", "kv_a_proj_with_mqa") or (mla and leaf == "q_proj"):
        return parent + ":q_a+kv_a"
    if not mla and leaf in ("q_proj", "k_proj", "v_proj"):
        return parent + ":qkv"
    if leaf in ("gate_proj", "up_proj"):
        return parent + ":gate_up"
    return prefix


def main():
    argv = sys.argv[1:]
    stats_path, float_re, dyn_re, fa, smoothed = None, None, None, False, False
    pos = []
    i = 0
    while i < len(argv):
        if argv[i] == "--stats":
            stats_path = argv[i + 1]
            i += 2
        elif argv[i] == "--fa":
            fa = True
            i += 1
        elif argv[i] == "--smoothed":
            smoothed = True
            i += 1
        elif argv[i] == "--float":
            float_re = re.compile(argv[i + 1])
            i += 2
        elif argv[i] == "--dynamic":
            dyn_re = re.compile(argv[i + 1])
            i += 2
        else:
            pos.append(argv[i])
            i += 1
    model_path, out_path = pos
    if os.path.isdir(model_path):
        model_path = os.path.join(model_path, "model.safetensors")
    fm = ST(model_path)
    if os.path.isdir(out_path):
        files = [ST(os.path.join(out_path, n)) for n in sorted(os.listdir(out_path))
                 if n.startswith("quant_model_weight") and n.endswith(".safetensors")]
        desc = json.load(open(os.path.join(out_path, "quant_model_description.json")))
    else:
        files = [ST(out_path)]
        desc = json.loads(files[0].meta["st.file.quant_model_description.json"])
    where = {}
    for f in files:
        for name in f.t:
            if name in where:
                print(f"tensor {name} in two output files")
                return 1
            where[name] = f
    static = stats_path is not None
    want_type = "W8A8" if static else "W8A8_DYNAMIC"
    problems = []

    def bad(msg):
        problems.append(msg)

    described = {k for k, v in desc.items() if k not in ("model_quant_type", "fa_quant_type") and not k.endswith(".quant_type")}
    if described != set(where):
        bad(f"description vs tensors: only described {sorted(described - set(where))[:5]}, "
            f"only stored {sorted(set(where) - described)[:5]}")

    dtype = next(fm.t[n]["dtype"] for n in fm.t if n.endswith("_proj.weight"))
    mla = any("kv_a_proj_with_mqa" in n for n in fm.t)
    # Decoder linears of the float model: 2-D .weight in model.layers.* except the router and
    # kv_b_proj (the loaders need both float).
    linears = sorted(n[:-7] for n, v in fm.t.items()
                     if n.startswith("model.layers.") and n.endswith(".weight") and len(v["shape"]) == 2
                     and not n.endswith((".mlp.gate.weight", ".self_attn.kv_b_proj.weight")))

    def is_static(p):
        return static and not (dyn_re and dyn_re.search(p))

    if static and dyn_re and any(dyn_re.search(p) for p in linears):
        want_type = "W8A8_DYNAMIC" if mla else "W8A8"  # a mixed file: msModelSlim's choice
    if desc.get("model_quant_type") != want_type:
        bad(f"model_quant_type {desc.get('model_quant_type')!r}, want {want_type!r}")
    expect_float = {p for p in linears if float_re and float_re.search(p)}
    # A fused group follows any float member.
    float_groups = {group_of(p, mla) for p in expect_float}
    expect_float |= {p for p in linears if group_of(p, mla) in float_groups}

    ranges = {}
    stats = ST(stats_path) if stats_path else None

    def stat_range(p):
        if p + ".input_min" in stats.t:
            return (struct.unpack("<f", stats.raw(p + ".input_min"))[0],
                    struct.unpack("<f", stats.raw(p + ".input_max"))[0])
        m = re.match(r"(.*\.mlp)\.experts\.\d+\.(\w+)$", p)
        if not m:
            raise KeyError(p)
        mlp, leaf = m.groups()
        if leaf != "down_proj" and mlp + ".shared_experts." + leaf + ".input_min" in stats.t:
            return stat_range(mlp + ".shared_experts." + leaf)
        rs = [stat_range(q) for q in linears if re.fullmatch(re.escape(mlp) + r"\.experts\.\d+\." + leaf, q)
              and q + ".input_min" in stats.t]
        return (min(r[0] for r in rs), max(r[1] for r in rs))

    if static and not smoothed:
        for p in linears:
            if p in expect_float or not is_static(p):
                continue
            lo, hi = stat_range(p)
            g = group_of(p, mla)
            a, b = ranges.get(g, (lo, hi))
            ranges[g] = (min(a, lo), max(b, hi))

    quantized_tensors = {}  # name -> expected type
    checked = 0
    for p in linears:
        w = p + ".weight"
        if p in expect_float:
            continue
        if where.get(w) is None or where[w].t[w]["dtype"] != "I8":
            bad(f"{w}: not quantized")
            continue
        o = where[w]
        n, k = fm.t[w]["shape"]
        if o.t[w]["shape"] != [n, k]:
            bad(f"{w}: shape {o.t[w]['shape']}")
            continue
        wf = to_floats(dtype, fm.raw(w))
        q = struct.unpack(f"<{n * k}b", o.raw(w))
        scales, sums = [], []
        if smoothed:
            ws_st = struct.unpack(f"<{n}f", where[p + ".weight_scale"].raw(p + ".weight_scale"))
            layer = p.split(".self_attn.")[0].split(".mlp.")[0]
            leaf = p.rsplit(".", 1)[1]
            norm = None
            if leaf in ("q_proj", "k_proj", "v_proj"):
                norm = layer + ".input_layernorm.weight"
            elif leaf in ("gate_proj", "up_proj") and ".mlp." + leaf == p[len(layer):]:
                norm = layer + ".post_attention_layernorm.weight"
            g0 = g1 = None
            if norm and norm in fm.t and norm in where:
                g0 = to_floats(fm.t[norm]["dtype"], fm.raw(norm))
                g1 = to_floats(where[norm].t[norm]["dtype"], where[norm].raw(norm))
            for r in range(n):
                qr = list(q[r * k:(r + 1) * k])
                if max(abs(x) for x in qr) not in (0, 127, 128):
                    bad(f"{w}: row {r} max |W_q| {max(abs(x) for x in qr)}, want 127")
                    break
                if g0 is not None:
                    # up_proj rows are also divided by down_proj's smoothing scale t_r: fit it.
                    t = 1.0
                    if leaf == "up_proj":
                        num = sum(wf[r * k + j] * g0[j] * qr[j] * ws_st[r] * g1[j] for j in range(k))
                        den = sum((qr[j] * ws_st[r] * g1[j]) ** 2 for j in range(k))
                        t = num / den if den > 0 else 1.0
                    for j in range(k):
                        want, got = wf[r * k + j] * g0[j], qr[j] * ws_st[r] * g1[j] * t
                        if abs(got - want) > 0.5 * ws_st[r] * abs(g1[j] * t) * 1.001 + 2e-3 * abs(want) + 1e-7:
                            bad(f"{w}: [{r},{j}] W_q*scale*norm' {got} vs W*norm {want}: function changed")
                            break
                scales.append(ws_st[r])
                sums.append(sum(qr))
        for r in range(n if not smoothed else 0):
            row = wf[r * k:(r + 1) * k]
            s = max(f32(max((abs(x) for x in row), default=0.0) / 127.0), EPS)
            qr = [q_elem(x, s) for x in row]
            if list(q[r * k:(r + 1) * k]) != qr:
                j = next(j for j in range(k) if q[r * k + j] != qr[j])
                bad(f"{w}: [{r},{j}] = {q[r * k + j]}, want {qr[j]}")
                break
            scales.append(s)
            sums.append(sum(qr))
        else:
            names = {"weight_scale": ("F32", [n, 1]), "weight_offset": ("F32", [n, 1])}
            for suf, (dt, shape) in names.items():
                t = where[p + "." + suf].t[p + "." + suf] if p + "." + suf in where else None
                if not t or t["dtype"] != dt or t["shape"] != shape:
                    bad(f"{p}.{suf}: {t}, want {dt} {shape}")
            ws = struct.unpack(f"<{n}f", where[p + ".weight_scale"].raw(p + ".weight_scale"))
            if list(ws) != list(scales):
                bad(f"{p}.weight_scale differs")
            if any(struct.unpack(f"<{n}f", where[p + ".weight_offset"].raw(p + ".weight_offset"))):
                bad(f"{p}.weight_offset not zero")
            ptype = "W8A8" if is_static(p) else "W8A8_DYNAMIC"
            quantized_tensors.update({x: ptype for x in (w, p + ".weight_scale", p + ".weight_offset")})
            if is_static(p):
                if smoothed:
                    s_in = to_floats(dtype, where[p + ".input_scale"].raw(p + ".input_scale"))[0]
                    off = to_floats(dtype, where[p + ".input_offset"].raw(p + ".input_offset"))[0]
                    if not (s_in > 0 and off == int(off) and -128 <= off <= 127):
                        bad(f"{p}: input_scale {s_in} / input_offset {off} out of range")
                    off = int(off)
                else:
                    lo, hi = ranges[group_of(p, mla)]
                    lo, hi = min(lo, 0.0), max(hi, 0.0)
                    s_in = round_dtype(dtype, max(f32(f32(hi - lo) / 255.0), EPS))
                    off = max(-128, min(127, round(f32(-lo / s_in)) - 128))
                for suf, want in (("input_scale", s_in), ("input_offset", float(off))):
                    t = where[p + "." + suf].t[p + "." + suf]
                    got = to_floats(dtype, where[p + "." + suf].raw(p + "." + suf)) if t["dtype"] == dtype else None
                    if t["shape"] != [1] or got != [want]:
                        bad(f"{p}.{suf}: {t['dtype']} {t['shape']} {got}, want {dtype} [1] {want}")
                deq = [f32(s_in * s) for s in scales]
                dq = where[p + ".deq_scale"]
                t = dq.t[p + ".deq_scale"]
                if dtype == "F16":
                    ok = t["dtype"] == "I64" and t["shape"] == [n]
                    got = [struct.unpack("<f", struct.pack("<I", v))[0] if 0 <= v < 2 ** 32 else None
                           for v in struct.unpack(f"<{n}q", dq.raw(p + ".deq_scale"))] if ok else None
                else:
                    ok = t["dtype"] == "F32" and t["shape"] == [n]
                    got = list(struct.unpack(f"<{n}f", dq.raw(p + ".deq_scale"))) if ok else None
                if got != deq:
                    bad(f"{p}.deq_scale: {t['dtype']} {t['shape']} differs from input_scale * weight_scale")
                bias = to_floats(fm.t[p + ".bias"]["dtype"], fm.raw(p + ".bias")) if p + ".bias" in fm.t else [0.0] * n
                qb_want = [round(bias[r] / deq[r] - off * sums[r]) for r in range(n)]
                t = where[p + ".quant_bias"].t[p + ".quant_bias"]
                qb = list(struct.unpack(f"<{n}i", where[p + ".quant_bias"].raw(p + ".quant_bias"))) \
                    if t["dtype"] == "I32" and t["shape"] == [n] else None
                if qb != qb_want:
                    bad(f"{p}.quant_bias: differs from round(b / deq_scale - input_offset * sum(W_q))")
                quantized_tensors.update({p + "." + s: ptype for s in ("input_scale", "input_offset", "deq_scale", "quant_bias")})
                if p + ".bias" in fm.t and p + ".bias" not in where:
                    bad(f"{p}.bias: the float bias is missing (msModelSlim keeps it beside quant_bias)")
            elif p + ".bias" in fm.t:
                quantized_tensors[p + ".bias"] = ptype
                if where[p + ".bias"].raw(p + ".bias") != fm.raw(p + ".bias"):
                    bad(f"{p}.bias changed")
            checked += 1
        if problems:
            break

    for name, ptype in quantized_tensors.items():
        if desc.get(name) != ptype:
            bad(f"{name}: described {desc.get(name)!r}, want {ptype!r}")
    floats = 0
    for name, t in fm.t.items():
        if name in quantized_tensors:
            continue
        if name not in where:
            bad(f"{name}: missing from the output")
            continue
        o = where[name]
        if smoothed and name.endswith("layernorm.weight") and o.t[name]["dtype"] == t["dtype"] \
                and o.t[name]["shape"] == t["shape"]:
            pass  # smoothing folded its scales in (checked through the linears above)
        elif o.t[name]["dtype"] != t["dtype"] or o.t[name]["shape"] != t["shape"] or o.raw(name) != fm.raw(name):
            bad(f"{name}: float tensor changed")
        elif desc.get(name) != "FLOAT":
            bad(f"{name}: described {desc.get(name)!r}, want 'FLOAT'")
        floats += 1
    if fa:
        mla_attn = mla
        want_fa = "FAKQuant" if mla_attn else "FAQuant"
        if desc.get("fa_quant_type") != want_fa:
            bad(f"fa_quant_type {desc.get('fa_quant_type')!r}, want {want_fa!r}")
        attns = sorted({n.rsplit(".", 2)[0] for n in fm.t if ".self_attn.o_proj.weight" in n})
        for a in attns:
            if mla_attn and desc.get(a + ".quant_type") != "INT8":
                bad(f"{a}.quant_type missing")
            for x, src in (("q", "q_absmax"), ("k", "kv_absmax" if mla_attn else "k_absmax"),
                           ("v", "kv_absmax" if mla_attn else "v_absmax")):
                st = stats.t[a + "." + src]
                absmax = struct.unpack(f"<{st['shape'][0]}f", stats.raw(a + "." + src))
                rows = 1 if mla_attn and x != "q" else len(absmax)
                sdt = "F32" if mla_attn else dtype
                want = [round_dtype(sdt, max(f32(v / 127.0), EPS)) for v in absmax][:rows]
                nm = f"{a}.fa_{x}.scale"
                t = where[nm].t[nm] if nm in where else None
                if not t or t["dtype"] != sdt or t["shape"] != [rows, 1] or to_floats(sdt, where[nm].raw(nm)) != want:
                    bad(f"{nm}: {t}, want {sdt} [{rows}, 1] {want[:4]}")
                on = f"{a}.fa_{x}.offset"
                t = where[on].t[on] if on in where else None
                if not t or t["dtype"] != "I8" or t["shape"] != [rows, 1] or any(where[on].raw(on)):
                    bad(f"{on}: {t}, want I8 zeros [{rows}, 1]")
                for n in (nm, on):
                    quantized_tensors[n] = "FAQuant"
                    if desc.get(n) != "FAQuant":
                        bad(f"{n}: described {desc.get(n)!r}, want 'FAQuant'")
    extra = set(where) - set(quantized_tensors) - set(fm.t)
    if extra:
        bad(f"unexpected output tensors: {sorted(extra)[:5]}")
    for msg in problems[:20]:
        print("check_w8a8: " + msg)
    print(f"check_w8a8: {checked} linears {want_type} checked, {floats} float tensors identical, "
          f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
