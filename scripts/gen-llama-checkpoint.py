#!/usr/bin/env python3
"""Generate a Llama-shaped random fp16 checkpoint for benchmarks (stdlib only).

usage: gen-llama-checkpoint.py OUT_DIR [--layers N] [--hidden H] [--intermediate I] [--vocab V]
                               [--heads A] [--kv-heads K] [--seed S]

Defaults give TinyLlama-1.1B's shape (22 layers, hidden 2048, intermediate 5632, 32 heads,
4 KV heads, vocab 32000): about 2.2 GB (2.05 GiB) of F16 in OUT_DIR/model.safetensors, plus a
config.json. Values are random finite fp16 numbers of magnitude 2^-6 .. 2^-2 with random signs
and mantissas (random bytes with the exponent bits remapped), so generation runs at the speed
of os.urandom, not of Python loops. Tensor order follows the safetensors writer (by name).
"""
import json
import os
import random
import struct
import sys

CHUNK = 1 << 24


def high_byte_table():
    """Maps a random byte to a valid fp16 high byte: sign, exponent 9..12 (2^-6..2^-3), 2 mantissa bits."""
    t = bytearray(256)
    for b in range(256):
        sign = b & 0x80
        exp = 9 + ((b >> 2) & 3)
        t[b] = sign | (exp << 2) | (b & 3)
    return bytes(t)


def main():
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    out = args[0]
    o = {"layers": 22, "hidden": 2048, "intermediate": 5632, "vocab": 32000, "heads": 32, "kv-heads": 4, "seed": 1}
    for i in range(1, len(args), 2):
        o[args[i][2:]] = int(args[i + 1])
    L, H, I, V, A, K = o["layers"], o["hidden"], o["intermediate"], o["vocab"], o["heads"], o["kv-heads"]
    hd = H // A
    shapes = {"model.embed_tokens.weight": [V, H], "lm_head.weight": [V, H], "model.norm.weight": [H]}
    for i in range(L):
        p = f"model.layers.{i}."
        shapes.update({p + "self_attn.q_proj.weight": [A * hd, H], p + "self_attn.k_proj.weight": [K * hd, H],
                       p + "self_attn.v_proj.weight": [K * hd, H], p + "self_attn.o_proj.weight": [H, A * hd],
                       p + "mlp.gate_proj.weight": [I, H], p + "mlp.up_proj.weight": [I, H],
                       p + "mlp.down_proj.weight": [H, I], p + "input_layernorm.weight": [H],
                       p + "post_attention_layernorm.weight": [H]})
    header = {"__metadata__": {"format": "pt"}}
    off = 0
    names = sorted(shapes)
    for n in names:
        size = 2
        for d in shapes[n]:
            size *= d
        header[n] = {"dtype": "F16", "shape": shapes[n], "data_offsets": [off, off + size]}
        off += size
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((8 - (8 + len(hb)) % 8) % 8)
    os.makedirs(out, exist_ok=True)
    rnd = random.Random(o["seed"])
    table = high_byte_table()
    path = os.path.join(out, "model.safetensors")
    with open(path + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb)
        for n in names:
            b, e = header[n]["data_offsets"]
            left = e - b
            if n.endswith("norm.weight"):  # norms near 1
                f.write(struct.pack("<e", 1.0) * (left // 2))
                continue
            while left:
                m = min(left, CHUNK)
                buf = bytearray(rnd.randbytes(m) if hasattr(rnd, "randbytes") else os.urandom(m))
                buf[1::2] = bytes(buf[1::2]).translate(table)
                f.write(buf)
                left -= m
    os.replace(path + ".tmp", path)
    cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": H,
           "intermediate_size": I, "num_hidden_layers": L, "num_attention_heads": A, "num_key_value_heads": K,
           "head_dim": hd, "vocab_size": V, "max_position_embeddings": 2048, "rms_norm_eps": 1e-5,
           "rope_theta": 10000.0, "tie_word_embeddings": False, "torch_dtype": "float16"}
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    print(f"{path}: {8 + len(hb) + off} bytes, {len(names)} tensors", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
