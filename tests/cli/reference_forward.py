#!/usr/bin/python3
"""An independent reference forward pass (float64 numpy) for the families of tests/cli/tiny_family.py,
written from each architecture's definition (transformers' modeling_qwen3_moe, modeling_mixtral,
modeling_glm / modeling_glm4, and the remote-code modeling_chatglm.py / modeling_baichuan.py), not
from st-tools' code. Run with Debian's /usr/bin/python3.

usage: reference_forward.py MODEL_DIR TOKENS.u32 SEQ_LEN [--stats FILE.json]

Prints the perplexity over the sequences (each SEQ_LEN tokens; every position but the last
predicts the next token) with 10 significant digits. --stats writes, per linear, the min and max
of its input over all tokens: {"<linear prefix>": [min, max], ...}.
"""
import json
import struct
import sys

import numpy as np


def load(path):
    raw = open(path + "/model.safetensors", "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        data = raw[8 + n + b:8 + n + end]
        if e["dtype"] == "F16":
            v = np.frombuffer(data, "<f2").astype(np.float64)
        elif e["dtype"] == "BF16":
            v = (np.frombuffer(data, "<u2").astype(np.uint32) << 16).view(np.float32).astype(np.float64)
        else:
            v = np.frombuffer(data, "<f4").astype(np.float64)
        out[name] = v.reshape(e["shape"])
    return out


class Ref:
    def __init__(self, cfg, w):
        self.cfg, self.w, self.stats = cfg, w, {}

    def linear(self, name, x):
        lo, hi = self.stats.get(name, (np.inf, -np.inf))
        self.stats[name] = (min(lo, float(x.min())), max(hi, float(x.max())))
        y = x @ self.w[name + ".weight"].T
        if name + ".bias" in self.w:
            y = y + self.w[name + ".bias"]
        return y

    def rms(self, name, x, eps):
        return self.w[name] * (x / np.sqrt((x * x).mean(-1, keepdims=True) + eps))


def silu(x):
    return x / (1 + np.exp(-x))


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def rotate_half(x):  # llama-style halves
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], -1)


def rope_halves(x, pos, theta):
    """x [T, heads, d]: HF's default RoPE on the whole head, halves layout."""
    d = x.shape[-1]
    inv = 1.0 / theta ** (np.arange(0, d, 2) / d)
    ang = np.outer(pos, inv)
    cos = np.concatenate([np.cos(ang)] * 2, -1)[:, None, :]
    sin = np.concatenate([np.sin(ang)] * 2, -1)[:, None, :]
    return x * cos + rotate_half(x) * sin


def rope_pairs(x, pos, theta, rot):
    """RoPE on the first `rot` dims of each head, pairs (2i, 2i+1) rotated by pos * theta^(-2i/rot)
    (GLM's interleaved rotate_half, ChatGLM's complex-number form); the rest passes through."""
    inv = 1.0 / theta ** (np.arange(0, rot, 2) / rot)
    ang = np.outer(pos, inv)[:, None, :]
    c, s = np.cos(ang), np.sin(ang)
    a, b = x[..., 0:rot:2], x[..., 1:rot:2]
    out = x.copy()
    out[..., 0:rot:2] = a * c - b * s
    out[..., 1:rot:2] = b * c + a * s
    return out


def attention(q, k, v, bias=None):
    """q [T, H, d], k/v [T, KV, d]: causal softmax attention, KV heads repeated over their groups."""
    T, Hq, d = q.shape
    rep = Hq // k.shape[1]
    k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
    s = np.einsum("thd,shd->hts", q, k) / np.sqrt(d)
    if bias is not None:
        s = s + bias
    s = np.where(np.tril(np.ones((T, T), bool))[None], s, -np.inf)
    return np.einsum("hts,shd->thd", softmax(s), v).reshape(T, Hq * d)


def moe(r, prefix, x, n_exp, top_k, renorm, leaves):
    logits = r.linear(prefix + ".gate", x)
    probs = softmax(logits)
    out = np.zeros_like(x)
    for t in range(x.shape[0]):
        chosen = np.argsort(-probs[t], kind="stable")[:top_k]
        wts = probs[t, chosen]
        if renorm:
            wts = wts / wts.sum()
        for e, wt in zip(chosen, wts):
            p = f"{prefix}.experts.{e}."
            h = silu(r.linear(p + leaves[0], x[t:t + 1])) * r.linear(p + leaves[1], x[t:t + 1])
            out[t] += wt * r.linear(p + leaves[2], h)[0]
    return out


def hf_decoder(r, ids, attn_fn, mlp_fn, sandwich=False):
    """Llama-style pre-norm decoder (model.layers.i with input / post-attention RMSNorm)."""
    c, w = r.cfg, r.w
    eps = c.get("rms_norm_eps", 1e-6)
    x = w["model.embed_tokens.weight"][ids]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        a = attn_fn(i, p, r.rms(p + "input_layernorm.weight", x, eps))
        if sandwich:
            a = r.rms(p + "post_self_attn_layernorm.weight", a, eps)
        x = x + a
        m = mlp_fn(i, p, r.rms(p + "post_attention_layernorm.weight", x, eps))
        if sandwich:
            m = r.rms(p + "post_mlp_layernorm.weight", m, eps)
        x = x + m
    return r.rms("model.norm.weight", x, eps) @ w["lm_head.weight"].T


def separate_qkv(r, p, x, hd, nq, nkv):
    T = x.shape[0]
    q = r.linear(p + "self_attn.q_proj", x).reshape(T, nq, hd)
    k = r.linear(p + "self_attn.k_proj", x).reshape(T, nkv, hd)
    v = r.linear(p + "self_attn.v_proj", x).reshape(T, nkv, hd)
    return q, k, v


def run_qwen3_moe(r, ids):
    c = r.cfg
    hd, pos, eps = c["head_dim"], np.arange(len(ids)), c["rms_norm_eps"]

    def attn(i, p, x):
        q, k, v = separate_qkv(r, p, x, hd, c["num_attention_heads"], c["num_key_value_heads"])
        q, k = r.rms(p + "self_attn.q_norm.weight", q, eps), r.rms(p + "self_attn.k_norm.weight", k, eps)
        q, k = rope_halves(q, pos, c["rope_theta"]), rope_halves(k, pos, c["rope_theta"])
        return r.linear(p + "self_attn.o_proj", attention(q, k, v))

    def mlp(i, p, x):
        sparse = i not in c["mlp_only_layers"] and (i + 1) % c["decoder_sparse_step"] == 0
        if sparse:
            return moe(r, p + "mlp", x, c["num_experts"], c["num_experts_per_tok"], c["norm_topk_prob"],
                       ("gate_proj", "up_proj", "down_proj"))
        return r.linear(p + "mlp.down_proj", silu(r.linear(p + "mlp.gate_proj", x)) * r.linear(p + "mlp.up_proj", x))

    return hf_decoder(r, ids, attn, mlp)


def run_mixtral(r, ids):
    c = r.cfg
    hd, pos = c["hidden_size"] // c["num_attention_heads"], np.arange(len(ids))

    def attn(i, p, x):
        q, k, v = separate_qkv(r, p, x, hd, c["num_attention_heads"], c["num_key_value_heads"])
        q, k = rope_halves(q, pos, c["rope_theta"]), rope_halves(k, pos, c["rope_theta"])
        return r.linear(p + "self_attn.o_proj", attention(q, k, v))

    def mlp(i, p, x):
        return moe(r, p + "block_sparse_moe", x, c["num_local_experts"], c["num_experts_per_tok"], True, ("w1", "w3", "w2"))

    return hf_decoder(r, ids, attn, mlp)


def run_glm(r, ids):
    c = r.cfg
    hd, pos = c["head_dim"], np.arange(len(ids))
    rot = int(hd * c.get("partial_rotary_factor", 0.5))

    def attn(i, p, x):
        q, k, v = separate_qkv(r, p, x, hd, c["num_attention_heads"], c["num_key_value_heads"])
        q, k = rope_pairs(q, pos, c["rope_theta"], rot), rope_pairs(k, pos, c["rope_theta"], rot)
        return r.linear(p + "self_attn.o_proj", attention(q, k, v))

    def mlp(i, p, x):
        gate, up = np.split(r.linear(p + "mlp.gate_up_proj", x), 2, -1)
        return r.linear(p + "mlp.down_proj", up * silu(gate))

    return hf_decoder(r, ids, attn, mlp, sandwich=c["model_type"] == "glm4")


def run_chatglm(r, ids):
    c, w = r.cfg, r.w
    T, eps = len(ids), c["layernorm_epsilon"]
    heads, groups, hn = c["num_attention_heads"], c["multi_query_group_num"], c["kv_channels"]
    rot, theta = hn // 2, 10000.0 * c.get("rope_ratio", 1)
    pos = np.arange(T)
    x = w["transformer.embedding.word_embeddings.weight"][ids]
    for i in range(c["num_layers"]):
        p = f"transformer.encoder.layers.{i}."
        h = r.rms(p + "input_layernorm.weight", x, eps)
        mixed = r.linear(p + "self_attention.query_key_value", h)
        q, k, v = np.split(mixed, [heads * hn, heads * hn + groups * hn], -1)
        q, k, v = q.reshape(T, heads, hn), k.reshape(T, groups, hn), v.reshape(T, groups, hn)
        q, k = rope_pairs(q, pos, theta, rot), rope_pairs(k, pos, theta, rot)
        x = x + r.linear(p + "self_attention.dense", attention(q, k, v))
        h = r.rms(p + "post_attention_layernorm.weight", x, eps)
        a, b = np.split(r.linear(p + "mlp.dense_h_to_4h", h), 2, -1)
        x = x + r.linear(p + "mlp.dense_4h_to_h", silu(a) * b)
    x = r.rms("transformer.encoder.final_layernorm.weight", x, eps)
    return x @ w["transformer.output_layer.weight"].T


def alibi_slopes(n):
    def pow2(n):
        start = 2 ** (-(2 ** -(np.log2(n) - 3)))
        return [start * start ** i for i in range(n)]
    if np.log2(n).is_integer():
        return pow2(n)
    p = 2 ** int(np.floor(np.log2(n)))
    return pow2(p) + alibi_slopes(2 * p)[0::2][:n - p]


def run_baichuan(r, ids):
    c, w = r.cfg, r.w
    T, hidden, heads = len(ids), c["hidden_size"], c["num_attention_heads"]
    hd, pos = hidden // heads, np.arange(T)
    alibi = c["num_hidden_layers"] == 40  # the 13B: ALiBi mask slope_h * j on key j, no RoPE
    bias = np.array(alibi_slopes(heads))[:, None, None] * np.arange(T)[None, None, :] if alibi else None

    def attn(i, p, x):
        proj = r.linear(p + "self_attn.W_pack", x)
        q, k, v = (proj[:, j * hidden:(j + 1) * hidden].reshape(T, heads, hd) for j in range(3))
        if not alibi:
            q, k = rope_halves(q, pos, 10000.0), rope_halves(k, pos, 10000.0)
        return r.linear(p + "self_attn.o_proj", attention(q, k, v, bias))

    def mlp(i, p, x):
        return r.linear(p + "mlp.down_proj", silu(r.linear(p + "mlp.gate_proj", x)) * r.linear(p + "mlp.up_proj", x))

    if c["vocab_size"] == 125696:  # Baichuan2's NormHead: unit-norm rows
        head = w["lm_head.weight"]
        w["lm_head.weight"] = head / np.maximum(np.linalg.norm(head, axis=1, keepdims=True), 1e-12)
    return hf_decoder(r, ids, attn, mlp)


def main():
    model, tokens, seq_len = sys.argv[1], sys.argv[2], int(sys.argv[3])
    cfg = json.load(open(model + "/config.json"))
    r = Ref(cfg, load(model))
    run = {"qwen3_moe": run_qwen3_moe, "mixtral": run_mixtral, "glm": run_glm, "glm4": run_glm,
           "chatglm": run_chatglm, "baichuan": run_baichuan}[cfg["model_type"]]
    ids = np.fromfile(tokens, "<u4").astype(np.int64)
    nll, count = 0.0, 0
    for s in range(len(ids) // seq_len):
        seq = ids[s * seq_len:(s + 1) * seq_len]
        logits = run(r, seq)
        lse = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1)
        nll += float((lse[:-1] - logits[np.arange(seq_len - 1), seq[1:]]).sum())
        count += seq_len - 1
    print(f"{np.exp(nll / count):.10g}")
    if len(sys.argv) > 5 and sys.argv[4] == "--stats":
        json.dump({k: list(v) for k, v in r.stats.items()}, open(sys.argv[5], "w"), indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
