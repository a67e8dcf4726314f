#!/usr/bin/env python3
"""Mutation tests of check_consumers.py: for every rule, a deliberately broken copy of an output that
the checker must flag with that rule, naming what was broken, where the unbroken copy was not flagged
so (no rule is a check that cannot fail).

usage: mutations.py BASES WORKDIR      BASES: lines "NAME PATH FLOAT_DIR" (conformance_mutations.sh)
Every rule of check_consumers.py --rules needs an entry here. Exit 0 when every mutation is caught.
"""
import json
import os
import shutil
import struct
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from check_consumers import RULES, run  # noqa: E402
from stedit import Tensors, edit_json, edit_tensors, weight_file  # noqa: E402

A0 = "model.layers.0.self_attn"
M0 = "model.layers.0.mlp"
D1 = "model.layers.1.self_attn"
E1 = "model.layers.1.mlp.experts"


def desc(d, fn):
    edit_json(os.path.join(d, "quant_model_description.json"), fn)


def cfg(d, fn):
    edit_json(os.path.join(d, "config.json"), fn)


def drop(d, name):
    """Removes a tensor and its description entry."""
    edit_tensors(d, lambda t: t.t.pop(name))
    desc(d, lambda x: x.pop(name, None) and None)


def set_desc(d, key, value):
    desc(d, lambda x: x.__setitem__(key, value))


def pop_key(obj, key):
    obj.pop(key)


def retype(d, name, dtype, shape=None):
    def fn(t):
        t.t[name][0] = dtype
        if shape is not None:
            t.t[name][1] = shape
    edit_tensors(d, fn)


def reshape(d, name, shape):
    edit_tensors(d, lambda t: t.t[name].__setitem__(1, shape))


def add(d, name, dtype, shape, values, type_=None):
    edit_tensors(d, lambda t: t.add(name, dtype, shape, values))
    if type_:
        set_desc(d, name, type_)


def set_f16(d, name, values):
    edit_tensors(d, lambda t: t.t[name].__setitem__(2, struct.pack(f"<{len(values)}e", *values)))


def to_parts(d):
    """Moves a flat output into part0-of-1/ (keeping config.json at the root too)."""
    os.mkdir(os.path.join(d, "part0-of-1"))
    for n in os.listdir(d):
        if n != "part0-of-1":
            shutil.move(os.path.join(d, n), os.path.join(d, "part0-of-1", n))
    shutil.copy(os.path.join(d, "part0-of-1", "config.json"), os.path.join(d, "config.json"))


def flatten_part(d):
    p0 = os.path.join(d, "part0-of-2")
    for n in os.listdir(d):
        if n.startswith("part"):
            continue
        os.remove(os.path.join(d, n))
    for n in os.listdir(p0):
        shutil.move(os.path.join(p0, n), d)
    shutil.rmtree(os.path.join(d, "part1-of-2"))
    os.rmdir(p0)


def truncate(path):
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 1)


def index_one(d):
    """A model.safetensors.index.json listing only the first weight file (vllm then skips the others)."""
    files = sorted(n for n in os.listdir(d) if n.endswith(".safetensors"))
    with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": {n: files[0] for n in Tensors(os.path.join(d, files[0])).t}}, f)


P1 = "part1-of-2"
# (consumer, rule, base, mutation(out_dir, float_dir), key the new line must name); repairs first.
MUTATIONS = [
    ("both", "safetensors", "q_dyn", lambda d, f: truncate(weight_file(d)), "quant_model_weight"),
    ("both", "safetensors-aligned", "q_dyn", lambda d, f: edit_tensors(d, lambda t: None, pad=False), "data starts"),
    ("both", "description-type", "q_dyn", lambda d, f: set_desc(d, f"{A0}.o_proj.weight", "W8A8X"), "o_proj.weight"),
    ("both", "description-model_quant_type", "q_dyn", lambda d, f: desc(d, lambda x: pop_key(x, "model_quant_type")),
     "no model_quant_type"),
    ("both", "description-orphan", "q_dyn", lambda d, f: set_desc(d, f"{M0}.ghost.weight", "FLOAT"), "ghost.weight"),
    ("both", "description-missing", "q_dyn", lambda d, f: desc(d, lambda x: pop_key(x, "model.norm.weight")),
     "model.norm.weight"),
    ("both", "kv_b_proj-float", "d_dyn", lambda d, f: set_desc(d, f"{D1}.kv_b_proj.weight", "W8A8_DYNAMIC"),
     "kv_b_proj.weight"),
    ("both", "fused-equal-input_scale", "q_w8a8", lambda d, f: set_f16(d, f"{A0}.k_proj.input_scale", [0.5]),
     "q_proj.input_scale"),
    ("both", "fused-equal-input_offset", "q_w8a8", lambda d, f: set_f16(d, f"{M0}.up_proj.input_offset", [7.0]),
     "gate_proj.input_offset"),
    ("both", "deq_scale-dtype", "q_w8a8", lambda d, f: retype(d, f"{A0}.o_proj.deq_scale", "F32", [32]),
     "o_proj.deq_scale"),
    ("both", "w8a8s-tensors", "q_w8a8s", lambda d, f: add(d, f"{A0}.o_proj.smooth_scale", "F32", [1], [1.0], "W8A8S"),
     "o_proj.smooth_scale"),
    ("both", "float-model-missing", "q_dyn", lambda d, f: drop(d, "model.norm.weight"), "model.norm.weight"),
    ("both", "float-model-shape", "q_dyn", lambda d, f: reshape(d, "model.norm.weight", [4, 4]), "model.norm.weight"),
    ("both", "side-files", "q_dyn", lambda d, f: open(os.path.join(d, "tokenizer_config.json"), "a").write(" "),
     "tokenizer_config.json"),
    ("both", "input-metadata", "q_dyn", lambda d, f: edit_tensors(f, lambda t: t.metadata.update({"st.probe": "x"})),
     "st.probe"),
    ("vllm-ascend", "layout", "q_dyn", lambda d, f: to_parts(d), "no loader for part"),
    ("vllm-ascend", "description-file", "q_dyn",
     lambda d, f: os.rename(os.path.join(d, "quant_model_description.json"),
                            os.path.join(d, "quant_model_description_w8a8_dynamic.json")), "legacy"),
    ("vllm-ascend", "config-quant_method", "q_dyn",
     lambda d, f: cfg(d, lambda c: c.update(quantization_config={"quant_method": "gptq"})), "quantization_config"),
    ("vllm-ascend", "model-dtype", "q_dyn", lambda d, f: cfg(d, lambda c: [c.pop(k, None) for k in ("dtype", "torch_dtype")]
                                                              and None), "no torch_dtype or dtype"),
    ("vllm-ascend", "index-filter", "q_split", lambda d, f: index_one(d), "-00002-of-"),
    ("vllm-ascend", "description-key", "q_dyn", lambda d, f: desc(d, lambda x: pop_key(x, f"{A0}.o_proj.weight")),
     "o_proj.weight"),
    ("vllm-ascend", "fused-members", "q_dyn", lambda d, f: desc(d, lambda x: pop_key(x, f"{A0}.k_proj.weight")),
     "k_proj.weight"),
    ("vllm-ascend", "fused-same-type", "q_dyn", lambda d, f: set_desc(d, f"{A0}.v_proj.weight", "FLOAT"), "q_proj.weight"),
    ("vllm-ascend", "scheme", "q_dyn", lambda d, f: set_desc(d, f"{A0}.o_proj.weight", "W4A8_DYNAMIC"), "o_proj.weight"),
    ("vllm-ascend", "moe-scheme", "d_dyn",
     lambda d, f: [set_desc(d, f"{E1}.0.{x}.weight", "W8A16") for x in ("gate_proj", "up_proj", "down_proj")],
     "experts.0.gate_proj.weight"),
    ("vllm-ascend", "moe-uniform", "d_dyn", lambda d, f: set_desc(d, f"{E1}.3.up_proj.weight", "FLOAT"),
     "experts.3.up_proj.weight"),
    ("vllm-ascend", "missing-tensor", "q_dyn", lambda d, f: drop(d, f"{A0}.o_proj.weight_scale"), "o_proj.weight_scale"),
    ("vllm-ascend", "unexpected-tensor", "q_dyn",
     lambda d, f: add(d, f"{A0}.o_proj.input_scale", "F16", [1], [0.1], "W8A8_DYNAMIC"), "o_proj.input_scale"),
    ("vllm-ascend", "weight-dtype", "q_w8a8", lambda d, f: retype(d, f"{A0}.o_proj.quant_bias", "F32"),
     "o_proj.quant_bias"),
    ("vllm-ascend", "weight-shape", "q_dyn", lambda d, f: reshape(d, f"{A0}.o_proj.weight", [256]), "o_proj.weight"),
    ("vllm-ascend", "scale-shape", "q_dyn", lambda d, f: reshape(d, f"{A0}.o_proj.weight_scale", [16]),
     "o_proj.weight_scale"),
    ("vllm-ascend", "per-tensor-shape", "q_w8a8", lambda d, f: reshape(d, f"{A0}.q_proj.input_scale", []),
     "q_proj.input_scale"),
    ("vllm-ascend", "input_offset-values", "q_w8a8", lambda d, f: set_f16(d, f"{A0}.o_proj.input_offset", [300.0]),
     "o_proj.input_offset"),
    ("vllm-ascend", "norm-bias-key", "q_dyn",
     lambda d, f: add(d, "model.layers.0.input_layernorm.bias", "F16", [16], [0.0] * 16), "input_layernorm.bias"),
    ("vllm-ascend", "router-float", "d_dyn", lambda d, f: set_desc(d, "model.layers.1.mlp.gate.weight", "W8A8_DYNAMIC"),
     "mlp.gate.weight"),
    ("vllm-ascend", "fa-mla", "q_dyn",
     lambda d, f: add(d, f"{A0}.fa_k.scale", "F32", [1, 1], [0.1], "FAQuant"), f"{A0}"),
    ("vllm-ascend", "fa-type", "d_fak", lambda d, f: set_desc(d, "fa_quant_type", "FAQuant"), "fa_quant_type"),
    ("vllm-ascend", "fa-keys", "d_fak", lambda d, f: desc(d, lambda x: pop_key(x, f"{D1}.fa_k.scale")), "fa_k.scale"),
    ("vllm-ascend", "fa-shape", "d_fak", lambda d, f: reshape(d, f"{D1}.fa_q.scale", [4, 2]), "fa_q.scale"),
    ("vllm-ascend", "fa-weight_scale", "d_fak", lambda d, f: drop(d, f"{D1}.q_b_proj.weight_scale"),
     "q_b_proj.weight_scale"),
    ("mindie", "config-root", "q_dyn", lambda d, f: os.remove(os.path.join(d, "config.json")), "config.json"),
    ("mindie", "config-model_type", "q_dyn", lambda d, f: cfg(d, lambda c: pop_key(c, "model_type")), "model_type"),
    ("mindie", "config-torch_dtype", "q_dyn", lambda d, f: cfg(d, lambda c: c.update(torch_dtype="float32")),
     "'float32'"),
    ("mindie", "quantize-missing", "q_dyn", lambda d, f: (cfg(d, lambda c: pop_key(c, "quantize")),
                                                         desc(d, lambda x: pop_key(x, "model_quant_type"))), "no quantize"),
    ("mindie", "quantize-value", "q_dyn", lambda d, f: cfg(d, lambda c: c.update(quantize="int8")), "'int8'"),
    ("mindie", "quantization_config", "q_dyn",
     lambda d, f: cfg(d, lambda c: c.update(quantization_config={"group_size": 32})), "group_size"),
    ("mindie", "layout", "q_dyn", lambda d, f: to_parts(d), "only for w8a8sc"),
    ("mindie", "sc-layout", "q_sc2", lambda d, f: flatten_part(d), "part0-of-1 at TP 1"),
    ("mindie", "sc-parts", "q_sc2",
     lambda d, f: os.rename(os.path.join(d, P1), os.path.join(d, "part2-of-2")), "parts are not"),
    ("mindie", "sc-quantize", "q_sc2", lambda d, f: cfg(d, lambda c: c.update(quantize="w8a8s")), "'w8a8s'"),
    ("mindie", "sc-tokenizer", "q_sc2",
     lambda d, f: [os.remove(os.path.join(d, n)) for n in os.listdir(d) if n.startswith("tokenizer")],
     "no tokenizer"),
    ("mindie", "sc-fp16", "q_sc2", lambda d, f: cfg(d, lambda c: c.update(torch_dtype="bfloat16")), "'bfloat16'"),
    ("mindie", "description-file", "q_dyn",
     lambda d, f: os.rename(os.path.join(d, "quant_model_description.json"),
                            os.path.join(d, "quant_model_description_w4a16.json")), "nor _w8a8_dynamic.json"),
    ("mindie", "duplicate-tensor", "q_dyn",
     lambda d, f: shutil.copy(weight_file(d), os.path.join(d, "zz_copy.safetensors")), "zz_copy"),
    ("mindie", "float-by-dtype", "q_dyn", lambda d, f: set_desc(d, f"{A0}.o_proj.weight", "FLOAT"), "o_proj.weight"),
    ("mindie", "loader-type", "q_w8a8", lambda d, f: cfg(d, lambda c: c.update(quantize="w8a8_dynamic")),
     "q_proj.weight"),
    ("mindie", "missing-tensor", "q_w8a8", lambda d, f: drop(d, f"{A0}.o_proj.deq_scale"), "o_proj.deq_scale"),
    ("mindie", "pack-type", "q_dyn", lambda d, f: set_desc(d, f"{A0}.k_proj.weight", "FLOAT"), "input_layernorm"),
    ("mindie", "norm-tensor", "q_dyn", lambda d, f: drop(d, "model.layers.0.post_attention_layernorm.weight"),
     "post_attention_layernorm.weight"),
    ("mindie", "norm-bias-ignored", "q_dyn",
     lambda d, f: add(d, "model.layers.0.input_layernorm.bias", "F16", [16], [0.5] * 16, "FLOAT"), "input_layernorm.bias"),
    ("mindie", "head-float", "q_dyn", lambda d, f: retype(d, "lm_head.weight", "I8", [32, 32]), "lm_head.weight"),
    ("mindie", "fa_quant_type", "l_fa", lambda d, f: desc(d, lambda x: pop_key(x, "fa_quant_type")), "self_attn"),
    ("mindie", "fa-missing", "l_fa", lambda d, f: drop(d, f"{A0}.fa_v.offset"), "fa_v.offset"),
    ("mindie", "fa-shape", "l_fa", lambda d, f: edit_tensors(d, lambda t: t.add(f"{A0}.fa_k.scale", "F32", [2, 1], [1, 1])),
     "fa_k.scale"),
    ("mindie", "sc-type", "q_sc2", lambda d, f: set_desc(os.path.join(d, P1), f"{A0}.o_proj.weight", "W8A8S"),
     "o_proj.weight"),
    ("mindie", "sc-weight", "q_sc2", lambda d, f: edit_tensors(os.path.join(d, P1), lambda t: t.t[f"{A0}.o_proj.weight"]
                                                               .__setitem__(1, [1, len(t.t[f"{A0}.o_proj.weight"][2])])),
     "o_proj.weight"),
    ("mindie", "sc-index", "q_sc2", lambda d, f: drop(os.path.join(d, P1), f"{A0}.o_proj.index"), "o_proj.index"),
    ("mindie", "sc-head", "q_sc2", lambda d, f: edit_tensors(os.path.join(d, P1), lambda t: t.t["lm_head.weight"]
                                                             .__setitem__(1, [32, 8])), "lm_head.weight"),
]


def copy_base(src, dst):
    shutil.copytree(src, dst, symlinks=True)


def main(argv):
    bases = {n: (p, fl) for n, p, fl in (line.split() for line in open(argv[0]) if line.strip())}
    work = argv[1]
    covered = {(c, r) for c, r, *_ in MUTATIONS}
    problems = [f"rule {c} {r} has no mutation" for c, rules in RULES.items() for r in rules if (c, r) not in covered]
    for i, (consumer, rule, base, mutate, key) in enumerate(MUTATIONS):
        path, float_dir = bases[base]
        d, fd = os.path.join(work, f"m{i}"), os.path.join(work, f"m{i}_float")
        copy_base(path, d)
        shutil.copytree(float_dir, fd, symlinks=False)
        before = run({"output": d, "consumer": "both", "float": fd})
        mutate(d, fd)
        after = run({"output": d, "consumer": "both", "float": fd})
        tag = f"{consumer} {rule}:"
        new = [x for x in after if x.startswith(tag) and key in x and x not in before]
        if not new:
            problems.append(f"{tag} mutation of {base} not caught (key {key!r}); its lines: "
                            f"{[x for x in after if x.startswith(tag)][:3]}")
        shutil.rmtree(d)
        shutil.rmtree(fd)
    for p in problems:
        print(p)
    print(f"{len(MUTATIONS)} mutations, {len(problems)} problems", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
