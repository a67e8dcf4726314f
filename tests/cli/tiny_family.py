#!/usr/bin/python3
"""Write a tiny random checkpoint of one model family, with the family's real tensor names and
config.json keys (numpy; run with Debian's /usr/bin/python3).

usage: tiny_family.py FAMILY OUT_DIR [--dtype F16|BF16] [--tokens FILE]

FAMILY: qwen3_moe, mixtral, glm, glm4, chatglm, baichuan2-7b, baichuan2-13b. The sizes are tiny but
keep what makes each family itself: Qwen3-MoE's head_dim that differs from hidden / heads, q/k
norms, a dense layer among MoE layers; Mixtral's block_sparse_moe w1/w3/w2 experts; GLM's fused
gate_up_proj, q/k/v biases and half-rotary, GLM-4's extra norms; ChatGLM's fused query_key_value
with 2 query groups, dense_h_to_4h, rope_ratio; Baichuan2's W_pack and 125696-token NormHead
vocabulary, the 13B's 40 ALiBi layers. Weights are seeded (seed 11). --tokens also writes 2
sequences of 16 little-endian uint32 token ids drawn from the vocabulary.
"""
import json
import os
import struct
import sys

import numpy as np

H, HEADS, KV, INTER, VOCAB = 32, 4, 2, 24, 96


def base(model_type, arch, layers):
    return {"architectures": [arch], "model_type": model_type, "hidden_size": H, "num_attention_heads": HEADS,
            "num_key_value_heads": KV, "num_hidden_layers": layers, "intermediate_size": INTER,
            "vocab_size": VOCAB, "max_position_embeddings": 64, "rms_norm_eps": 1e-6, "hidden_act": "silu",
            "tie_word_embeddings": False, "torch_dtype": "float16"}


def qwen3_moe():
    cfg = base("qwen3_moe", "Qwen3MoeForCausalLM", 3)
    cfg.update({"head_dim": 16, "num_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 16,
                "norm_topk_prob": True, "decoder_sparse_step": 1, "mlp_only_layers": [1], "rope_theta": 1000000.0,
                "attention_bias": False, "use_sliding_window": False})
    t = {}
    for i in range(3):
        p = f"model.layers.{i}."
        attn(t, p + "self_attn.", 16)
        t[p + "self_attn.q_norm.weight"] = ("norm", [16])
        t[p + "self_attn.k_norm.weight"] = ("norm", [16])
        norms(t, p)
        if i == 1:
            mlp(t, p + "mlp.", INTER, ("gate_proj", "up_proj", "down_proj"))
        else:
            t[p + "mlp.gate.weight"] = ("lin", [8, H])
            for e in range(8):
                mlp(t, p + f"mlp.experts.{e}.", 16, ("gate_proj", "up_proj", "down_proj"))
    return cfg, hf_outer(t)


def mixtral():
    cfg = base("mixtral", "MixtralForCausalLM", 2)
    cfg.update({"num_local_experts": 4, "num_experts_per_tok": 2, "rope_theta": 1000000.0, "sliding_window": None,
                "router_aux_loss_coef": 0.02})
    t = {}
    for i in range(2):
        p = f"model.layers.{i}."
        attn(t, p + "self_attn.", H // HEADS)
        norms(t, p)
        t[p + "block_sparse_moe.gate.weight"] = ("lin", [4, H])
        for e in range(4):
            mlp(t, p + f"block_sparse_moe.experts.{e}.", INTER, ("w1", "w3", "w2"))
    return cfg, hf_outer(t)


def glm(glm4):
    cfg = base("glm4" if glm4 else "glm", "Glm4ForCausalLM" if glm4 else "GlmForCausalLM", 2)
    cfg.update({"head_dim": 16, "partial_rotary_factor": 0.5, "attention_bias": True, "rope_theta": 10000.0,
                "rms_norm_eps": 1.5625e-07})
    t = {}
    for i in range(2):
        p = f"model.layers.{i}."
        attn(t, p + "self_attn.", 16, qkv_bias=True)
        norms(t, p)
        if glm4:
            t[p + "post_self_attn_layernorm.weight"] = ("norm", [H])
            t[p + "post_mlp_layernorm.weight"] = ("norm", [H])
        t[p + "mlp.gate_up_proj.weight"] = ("lin", [2 * INTER, H])
        t[p + "mlp.down_proj.weight"] = ("lin", [H, INTER])
    return cfg, hf_outer(t)


def chatglm():
    kvc, groups = 16, 2
    cfg = {"architectures": ["ChatGLMModel"], "model_type": "chatglm", "auto_map": {
        "AutoConfig": "configuration_chatglm.ChatGLMConfig", "AutoModelForCausalLM": "modeling_chatglm.ChatGLMForConditionalGeneration"},
        "add_bias_linear": False, "add_qkv_bias": True, "apply_query_key_layer_scaling": True,
        "apply_residual_connection_post_layernorm": False, "attention_dropout": 0.0, "attention_softmax_in_fp32": True,
        "bias_dropout_fusion": True, "ffn_hidden_size": INTER, "fp32_residual_connection": False, "hidden_dropout": 0.0,
        "hidden_size": H, "kv_channels": kvc, "layernorm_epsilon": 1e-05, "multi_query_attention": True,
        "multi_query_group_num": groups, "num_attention_heads": HEADS, "num_layers": 2, "original_rope": True,
        "padded_vocab_size": VOCAB, "post_layer_norm": True, "rmsnorm": True, "rope_ratio": 2, "seq_length": 64,
        "use_cache": True, "torch_dtype": "float16", "tie_word_embeddings": False}
    t = {"transformer.embedding.word_embeddings.weight": ("emb", [VOCAB, H]),
         "transformer.rotary_pos_emb.inv_freq": ("inv_freq", [kvc // 4]),
         "transformer.encoder.final_layernorm.weight": ("norm", [H]),
         "transformer.output_layer.weight": ("lin", [VOCAB, H])}
    rows = (HEADS + 2 * groups) * kvc
    for i in range(2):
        p = f"transformer.encoder.layers.{i}."
        norms(t, p)
        t[p + "self_attention.query_key_value.weight"] = ("lin", [rows, H])
        t[p + "self_attention.query_key_value.bias"] = ("bias", [rows])
        t[p + "self_attention.dense.weight"] = ("lin", [H, HEADS * kvc])
        t[p + "mlp.dense_h_to_4h.weight"] = ("lin", [2 * INTER, H])
        t[p + "mlp.dense_4h_to_h.weight"] = ("lin", [H, INTER])
    return cfg, t


def baichuan(big):
    h, heads, layers = 16, 2, 40 if big else 2
    cfg = {"architectures": ["BaichuanForCausalLM"], "model_type": "baichuan", "auto_map": {
        "AutoConfig": "configuration_baichuan.BaichuanConfig", "AutoModelForCausalLM": "modeling_baichuan.BaichuanForCausalLM"},
        "hidden_size": h, "intermediate_size": INTER, "num_attention_heads": heads, "num_hidden_layers": layers,
        "vocab_size": 125696, "model_max_length": 64, "rms_norm_eps": 1e-06, "hidden_act": "silu",
        "tie_word_embeddings": False, "torch_dtype": "float16", "pad_token_id": 0, "bos_token_id": 1,
        "eos_token_id": 2}
    if not big:
        cfg["max_position_embeddings"] = 64
    t = {"model.embed_tokens.weight": ("emb", [125696, h]), "model.norm.weight": ("norm", [h]),
         "lm_head.weight": ("head", [125696, h])}
    for i in range(layers):
        p = f"model.layers.{i}."
        t[p + "input_layernorm.weight"] = ("norm", [h])
        t[p + "post_attention_layernorm.weight"] = ("norm", [h])
        t[p + "self_attn.W_pack.weight"] = ("lin", [3 * h, h])
        t[p + "self_attn.o_proj.weight"] = ("lin", [h, h])
        mlp(t, p + "mlp.", INTER, ("gate_proj", "up_proj", "down_proj"), hidden=h)
    return cfg, t


def attn(t, p, hd, qkv_bias=False):
    t[p + "q_proj.weight"] = ("lin", [HEADS * hd, H])
    t[p + "k_proj.weight"] = ("lin", [KV * hd, H])
    t[p + "v_proj.weight"] = ("lin", [KV * hd, H])
    t[p + "o_proj.weight"] = ("lin", [H, HEADS * hd])
    if qkv_bias:
        for x, n in (("q", HEADS), ("k", KV), ("v", KV)):
            t[p + f"{x}_proj.bias"] = ("bias", [n * hd])


def norms(t, p):
    t[p + "input_layernorm.weight"] = ("norm", [H])
    t[p + "post_attention_layernorm.weight"] = ("norm", [H])


def mlp(t, p, width, names, hidden=H):
    t[p + names[0] + ".weight"] = ("lin", [width, hidden])
    t[p + names[1] + ".weight"] = ("lin", [width, hidden])
    t[p + names[2] + ".weight"] = ("lin", [hidden, width])


def hf_outer(t):
    t["model.embed_tokens.weight"] = ("emb", [VOCAB, H])
    t["model.norm.weight"] = ("norm", [H])
    t["lm_head.weight"] = ("head", [VOCAB, H])
    return t


def values(rng, kind, shape):
    if kind == "norm":
        return 1.0 + 0.2 * rng.standard_normal(shape)
    if kind == "bias":
        return 0.1 * rng.standard_normal(shape)
    if kind == "inv_freq":
        return 1.0 / 10000 ** (np.arange(0, 2 * shape[0], 2) / (2 * shape[0]))
    if kind == "emb":
        return rng.standard_normal(shape)
    scale = 2.0 if kind == "head" else 1.0
    return scale * rng.standard_normal(shape) / np.sqrt(shape[-1])


def encode(v, dtype):
    if dtype == "F16":
        return v.astype("<f2").tobytes()
    bits = v.astype("<f4").view("<u4")
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16  # round to nearest even
    return bits.astype("<u2").tobytes()


def write_safetensors(path, tensors):
    """As the safetensors writer lays a file out (compact header, padded to 8 bytes), so that a
    split and merged copy can be compared byte for byte."""
    header, off = {"__metadata__": {"format": "pt"}}, 0
    for name, (dt, shape, data) in tensors.items():
        header[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}
        off += len(data)
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((8 - (8 + len(hb)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hb)) + hb)
        for _, (_, _, data) in tensors.items():
            f.write(data)


def main():
    a = sys.argv[1:]
    family, out = a[0], a[1]
    opts = dict(zip(a[2::2], a[3::2]))
    dtype = opts.get("--dtype", "F16")
    makers = {"qwen3_moe": qwen3_moe, "mixtral": mixtral, "glm": lambda: glm(False), "glm4": lambda: glm(True),
              "chatglm": chatglm, "baichuan2-7b": lambda: baichuan(False), "baichuan2-13b": lambda: baichuan(True)}
    cfg, spec = makers[family]()
    cfg["torch_dtype"] = "float16" if dtype == "F16" else "bfloat16"
    rng = np.random.default_rng(11)
    tensors = {}
    for name in sorted(spec):
        kind, shape = spec[name]
        tensors[name] = (dtype, shape, encode(values(rng, kind, shape), dtype))
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        f.write(json.dumps(cfg, indent=2) + "\n")
    write_safetensors(os.path.join(out, "model.safetensors"), tensors)
    if "--tokens" in opts:
        vocab = cfg.get("vocab_size", cfg.get("padded_vocab_size"))
        ids = rng.integers(0, vocab, size=32, dtype=np.uint32)
        with open(opts["--tokens"], "wb") as f:
            f.write(ids.astype("<u4").tobytes())


if __name__ == "__main__":
    main()
