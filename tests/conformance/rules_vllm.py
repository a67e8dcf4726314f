"""vllm-ascend's rules (vllm-project/vllm-ascend vllm_ascend/quantization/, plus vllm's loaders)."""
import json
import os

from model import EXPERT_RE, Model
from rules_both import linear_type, is_meta_key
from stfiles import FLOAT_DTYPES

# (quant_type, layer_type) pairs of @register_scheme in vllm_ascend/quantization/methods/*.py (A2/A3).
LINEAR_SCHEMES = {"W8A8", "W8A8_DYNAMIC", "W8A16", "W8A8_MIX", "W4A4_DYNAMIC", "W4A4_FLATQUANT_DYNAMIC", "W4A4_MXFP4",
                  "W4A4_MXFP4_FLATQUANT", "W4A8_MXFP", "W8A8_MXFP8", "W8A8FP8_DYNAMIC"}
MOE_SCHEMES = {"W8A8_DYNAMIC", "W4A8_DYNAMIC", "W4A16", "W4A16_MXFP4", "W4A4_MXFP4", "W4A8_MXFP", "W8A8_MXFP8",
               "W8A8FP8_DYNAMIC"}
# vllm_ascend/_310p/quantization/methods/*.py register these for the 310P only.
ONLY_310P = {"W8A8S", "W8A8SC"}
# Parameters each scheme creates: w8a8_static.py get_weight / get_pertensor_param / get_perchannel_param,
# w8a8_dynamic.py get_weight / get_perchannel_param, vllm UnquantizedLinearMethod; (needed, accepted).
PARAMS = {"W8A8": ({"weight", "input_scale", "input_offset", "quant_bias", "deq_scale"}, {"weight_scale", "weight_offset"}),
          "W8A8_DYNAMIC": ({"weight", "weight_scale"}, {"weight_offset"}),
          "FLOAT": ({"weight"}, set())}


def check_vllm(out, v, float_names=None):
    if out.kind == "parts":
        # vllm DefaultModelLoader reads one directory; the 310P sharded_state_loader_310p.py reads
        # model-rank-*-part-* files with an `info` file, not part{i}-of-{n}/ folders.
        v("layout", out.root, "-", "vllm-ascend has no loader for part{i}-of-{n}/ folders")
        return
    unit = out.units[0]
    check_files_and_config(unit, v)
    d = unit.description if isinstance(unit.description, dict) else None
    if d is None:
        return
    model = Model(unit.config, set(unit.tensors) | {k for k, x in d.items() if not is_meta_key(k, x)})
    check_keys_and_groups(unit, model, d, v)
    check_schemes(unit, model, d, v)
    check_params(unit, model, v, float_names)
    check_norms_router(unit, d, v)
    check_fa(unit, model, d, v)


def check_files_and_config(unit, v):
    # modelslim_config.py MODELSLIM_CONFIG_FILENAME, maybe_update_config (only that name is looked for).
    if unit.description_name != "quant_model_description.json":
        v("description-file", unit.path, "-", "no quant_model_description.json "
          f"({unit.description_name or 'no description'}; the legacy _<type>.json name is not read)")
    cfg = unit.config if isinstance(unit.config, dict) else {}
    # modelslim_config.py override_quantization_method: another quant_method takes the model elsewhere.
    qc = cfg.get("quantization_config")
    if isinstance(qc, dict) and qc.get("quant_method") not in (None, "", "ascend"):
        v("config-quant_method", os.path.join(unit.path, "config.json"), "quantization_config",
          f"quant_method {qc.get('quant_method')!r} is not ascend")
    # vllm ModelConfig takes params_dtype from the HF config's torch_dtype (dtype in transformers 5).
    if not (cfg.get("torch_dtype") or cfg.get("dtype")):
        v("model-dtype", os.path.join(unit.path, "config.json"), "-", "no torch_dtype or dtype")
    # vllm model_loader/weight_utils.py filter_duplicate_safetensors_files: with the index present,
    # files it does not list are skipped.
    index = os.path.join(unit.path, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            listed = set(json.load(f).get("weight_map", {}).values())
        for wf in unit.files:
            if os.path.basename(wf.path) not in listed:
                v("index-filter", index, os.path.basename(wf.path), "weight file not in the index: vllm skips it")


def check_keys_and_groups(unit, model, d, v):
    dfile = os.path.join(unit.path, unit.description_name)
    # modelslim_config.py get_linear_quant_type: quant_description[prefix + ".weight"] (KeyError), and
    # is_layer_skipped_ascend for embeddings / lm_head.
    heads = [n for n in ("model.embed_tokens.weight", "lm_head.weight") if n in unit.tensors]
    for key in [p + ".weight" for p in model.linears if not EXPERT_RE.match(p)] + heads:
        if key not in d:
            v("description-key", dfile, key, "no description key: get_linear_quant_type raises KeyError")
    groups = [list(g) for g in model.fused_groups()]
    # packed_modules_model_mapping "experts": experts.0.{gate,up,down}_proj describe the whole FusedMoE.
    for base in model.experts:
        groups.append([f"{base}.0.{leaf}" for leaf in ("gate_proj", "up_proj", "down_proj")])
    for g in groups:
        missing = [p for p in g if p + ".weight" not in d]
        if missing:
            v("fused-members", dfile, missing[0] + ".weight", "member of a fused group not described (KeyError)")
        types = {d[p + ".weight"] for p in g if p + ".weight" in d}
        if len(types) > 1:
            v("fused-same-type", dfile, g[0] + ".weight", f"fused members differ: {sorted(types)} (ValueError)")


def check_schemes(unit, model, d, v):
    dfile = os.path.join(unit.path, unit.description_name)
    for p in model.linears:
        t = d.get(p + ".weight")
        if t in (None, "FLOAT") or EXPERT_RE.match(p):
            continue
        if t not in LINEAR_SCHEMES:
            where = " (registered only for the 310P in vllm_ascend/_310p)" if t in ONLY_310P else ""
            v("scheme", dfile, p + ".weight", f"no ({t}, linear) scheme{where}")
    for base, experts in model.experts.items():
        first = {EXPERT_RE.match(p).group(3): d.get(p + ".weight") for p in experts.get(0, [])}
        t = first.get("gate_proj")
        if t not in (None, "FLOAT") and t not in MOE_SCHEMES:
            v("moe-scheme", dfile, f"{base}.0.gate_proj.weight", f"no ({t}, moe) scheme: FusedMoE cannot load it")
        # FusedMoE creates one parameter set for all experts from experts.0's scheme.
        for idx, linears in sorted(experts.items()):
            for p in linears:
                leaf = EXPERT_RE.match(p).group(3)
                if d.get(p + ".weight") != first.get(leaf):
                    v("moe-uniform", dfile, p + ".weight",
                      f"{d.get(p + '.weight')} while experts.0 is {first.get(leaf)}")


def check_params(unit, model, v, float_names):
    for p in model.linears:
        t = linear_type(unit, p)
        if t not in PARAMS:
            continue
        needed, accepted = PARAMS[t]
        has_bias = model.has_bias(p, float_names)
        needed = needed | ({"bias"} if has_bias else set())
        present = {n[len(p) + 1:] for n in unit.tensors if n.startswith(p + ".") and "." not in n[len(p) + 1:]}
        for s in sorted(needed - present):
            v("missing-tensor", unit.path, f"{p}.{s}", f"{t} linear needs it")
        for s in sorted(present - needed - accepted):
            v("unexpected-tensor", unit.tensors[f"{p}.{s}"].file.path, f"{p}.{s}",
              f"the {t} scheme has no such parameter (KeyError in load_weights)")
        check_shapes(unit, p, t, model, v)


def check_shapes(unit, p, t, model, v):
    # w8a8_static.py / w8a8_dynamic.py parameter shapes and dtypes; vllm linear.py weight_loader asserts.
    w = unit.tensors.get(p + ".weight")
    if t == "FLOAT" or w is None:
        return
    if w.dtype != "I8":
        v("weight-dtype", w.file.path, w.name, f"{w.dtype}, {t} needs I8")
    if len(w.shape) != 2:
        v("weight-shape", w.file.path, w.name, f"shape {w.shape}, needs [out, in]")
        return
    out = w.shape[0]
    fused = any(p in g for g in model.fused_groups())
    want = {"weight_scale": [out, 1], "weight_offset": [out, 1], "deq_scale": [out], "quant_bias": [out]}
    for s, shape in want.items():
        x = unit.tensors.get(f"{p}.{s}")
        if x is not None and x.shape != shape:
            v("scale-shape", x.file.path, x.name, f"shape {x.shape}, needs {shape}")
    qb = unit.tensors.get(p + ".quant_bias")
    if qb is not None and qb.dtype != "I32":
        v("weight-dtype", qb.file.path, qb.name, f"{qb.dtype}, needs I32")
    for s in ("input_scale", "input_offset"):
        x = unit.tensors.get(f"{p}.{s}")
        if x is not None and x.shape != [1] and (fused or x.shape != []):
            v("per-tensor-shape", x.file.path, x.name, f"shape {x.shape}, needs [1]" + (" (fused)" if fused else ""))
    off = unit.tensors.get(p + ".input_offset")
    vals = off.values() if off is not None else None
    if vals and any(x != int(x) or not -128 <= x <= 127 for x in vals):
        v("input_offset-values", off.file.path, off.name, f"{vals} do not fit the int8 parameter")


def check_norms_router(unit, d, v):
    # ops/layernorm.py AscendRMSNorm.__init__ creates `bias` only when a description key names norm.bias.
    if any("norm.bias" in n for n in unit.tensors) and not any("norm.bias" in k for k in d):
        name = next(n for n in unit.tensors if "norm.bias" in n)
        v("norm-bias-key", unit.tensors[name].file.path, name, "norm bias with no norm.bias description key")
    # vllm models/deepseek_v2.py builds the router gate with quant_config=None: a float parameter.
    for name, t in unit.tensors.items():
        if name.endswith(".mlp.gate.weight") and (t.dtype not in FLOAT_DTYPES or d.get(name) not in (None, "FLOAT")):
            v("router-float", t.file.path, name, f"router gate is {d.get(name)} / {t.dtype}, vllm loads it float")


def check_fa(unit, model, d, v):
    if not model.fa:
        return
    dfile = os.path.join(unit.path, unit.description_name)
    # methods/kv_c8.py: the only attention scheme for FA quantization is ("FAKQuant", "attention"),
    # built by mla_v1.py; non-MLA attention has no FA-quant path.
    if not model.is_mla:
        v("fa-mla", unit.path, next(iter(model.fa)), "FA quantization tensors on a non-MLA model (vllm-ascend: MLA only)")
        return
    if d.get("fa_quant_type") != "FAKQuant":
        v("fa-type", dfile, "fa_quant_type", f"{d.get('fa_quant_type')!r}, the only registered scheme is FAKQuant")
    for attn, tensors in sorted(model.fa.items()):
        # modelslim_config.py _add_kvcache_quant_metadata: fa layers are the keys holding "fa_k.scale".
        if attn + ".fa_k.scale" not in d:
            v("fa-keys", dfile, attn + ".fa_k.scale", "layer's FA tensors not keyed by fa_k.scale")
        # kv_c8.py create_weights / _fa_quant_weight_loader: fa_q [heads, 1], fa_k / fa_v one value (MLA).
        for (which, kind), name in tensors.items():
            t = unit.tensors.get(name)
            if t is None:
                continue
            if which == "fa_q" and t.shape != [model.heads, 1]:
                v("fa-shape", t.file.path, name, f"shape {t.shape}, needs [{model.heads}, 1]")
            if which != "fa_q" and t.numel != 1:
                v("fa-shape", t.file.path, name, f"shape {t.shape}, needs one value")
            vals = t.values() if kind == "offset" else None
            if vals and any(x != int(x) or not -128 <= x <= 127 for x in vals):
                v("fa-shape", t.file.path, name, "offset values do not fit int8")
        # mla_v1.py _process_weights_for_fused_fa_quant reads q_b_proj's and fused_qkv_a_proj's weight_scale.
        for leaf in ("q_b_proj", "q_a_proj", "kv_a_proj_with_mqa"):
            name = f"{attn}.{leaf}.weight_scale"
            if name not in unit.tensors:
                v("fa-weight_scale", unit.path, name, "FAKQuant reads it: the linear must be quantized with weight_scale")
