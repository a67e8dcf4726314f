#!/usr/bin/env python3
"""Write a tiny random float checkpoint for command-level tests (stdlib only).

usage: tiny_model.py OUT_DIR [--model-type T] [--dtype F16|BF16] [--nan TENSOR] [--shape TENSOR=a,b,c]
       [--bias] [--stream FILE] [--stats FILE] [--stats-nan LINEAR]

A 1-layer Llama-shaped model (hidden 16, 2 heads / 1 KV head, intermediate 24), seeded (seed 7),
HF layout: OUT_DIR/config.json + model.safetensors. --nan puts a NaN in a tensor; --shape
overrides a tensor's shape (to plant a malformed linear); --bias adds q/k/v biases (qwen2 style);
--stream also writes the model as one safetensors stream whose __metadata__ carries config.json;
--stats writes random statistics for every linear (--stats-nan: a NaN input_max for one).
"""
import json
import os
import random
import struct
import sys


def f16(x):
    return struct.pack("<e", x)


def main():
    a = sys.argv[1:]
    out = a[0]
    opts = {"model-type": "llama", "dtype": "F16", "nan": None, "shape": None, "stream": None, "stats": None,
            "stats-nan": None}
    bias = "--bias" in a
    i = 1
    while i < len(a):
        if a[i] == "--bias":
            i += 1
            continue
        opts[a[i][2:]] = a[i + 1]
        i += 2
    rnd = random.Random(7)
    h, kv, hd, inter = 16, 1, 8, 24
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": opts["model-type"], "hidden_size": h,
           "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": kv, "head_dim": hd,
           "intermediate_size": inter, "vocab_size": 32, "rms_norm_eps": 1e-6, "max_position_embeddings": 64,
           "tie_word_embeddings": False, "dtype": "float16" if opts["dtype"] == "F16" else "bfloat16"}
    shapes = {"lm_head.weight": [32, h], "model.embed_tokens.weight": [32, h],
              "model.layers.0.input_layernorm.weight": [h], "model.layers.0.post_attention_layernorm.weight": [h],
              "model.layers.0.self_attn.q_proj.weight": [2 * hd, h],
              "model.layers.0.self_attn.k_proj.weight": [kv * hd, h],
              "model.layers.0.self_attn.v_proj.weight": [kv * hd, h],
              "model.layers.0.self_attn.o_proj.weight": [h, 2 * hd],
              "model.layers.0.mlp.gate_proj.weight": [inter, h], "model.layers.0.mlp.up_proj.weight": [inter, h],
              "model.layers.0.mlp.down_proj.weight": [h, inter], "model.norm.weight": [h]}
    if bias:
        for p in "qkv":
            shapes[f"model.layers.0.self_attn.{p}_proj.bias"] = [shapes[f"model.layers.0.self_attn.{p}_proj.weight"][0]]
    if opts["shape"]:
        name, dims = opts["shape"].split("=")
        shapes[name] = [int(d) for d in dims.split(",")]
    tensors = []
    for name in sorted(shapes):
        n = 1
        for d in shapes[name]:
            n *= d
        vals = [rnd.gauss(0, 0.1) for _ in range(n)]
        if name == opts["nan"]:
            vals[n // 2] = float("nan")
        if opts["dtype"] == "F16":
            data = b"".join(f16(v) for v in vals)
        else:
            data = b"".join(struct.pack("<f", v)[2:] for v in vals)
        tensors.append((name, opts["dtype"], shapes[name], data))

    def write(path, metadata):
        header = {"__metadata__": metadata}
        off = 0
        for name, dt, shape, data in tensors:
            header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}
            off += len(data)
        hb = json.dumps(header).encode()
        hb += b" " * ((8 - (8 + len(hb)) % 8) % 8)
        with open(path, "wb") as f:
            f.write(struct.pack("<Q", len(hb)) + hb)
            for t in tensors:
                f.write(t[3])

    os.makedirs(out, exist_ok=True)
    cfg_text = json.dumps(cfg, indent=2) + "\n"
    open(os.path.join(out, "config.json"), "w").write(cfg_text)
    write(os.path.join(out, "model.safetensors"), {"format": "pt"})
    if opts["stream"]:
        write(opts["stream"], {"format": "pt", "st.file.config.json": cfg_text})
    if opts["stats"]:
        tensors.clear()
        for name in sorted(shapes):
            if not (name.startswith("model.layers.") and name.endswith("_proj.weight")):
                continue
            p, k = name[:-7], shapes[name][1]
            lo, hi = -rnd.uniform(0.1, 3), rnd.uniform(0.1, 3)
            if p == opts["stats-nan"]:
                hi = float("nan")
            tensors += [(p + ".input_min", "F32", [1], struct.pack("<f", lo)),
                        (p + ".input_max", "F32", [1], struct.pack("<f", hi)),
                        (p + ".input_absmax", "F32", [k], struct.pack(f"<{k}f", *[max(-lo, hi)] * k)),
                        (p + ".input_sumsq", "F64", [k], bytes(8 * k)),
                        (p + ".tokens", "I64", [1], struct.pack("<q", 100))]
        write(opts["stats"], {"st.stats.version": "1"})


if __name__ == "__main__":
    main()
