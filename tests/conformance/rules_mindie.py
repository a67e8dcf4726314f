"""MindIE's rules (Ascend/MindIE-LLM examples/atb_models/atb_llm/, paths below relative to it)."""
import os
import re

from model import EXPERT_RE, Model
from rules_both import is_meta_key, linear_type
from stfiles import FLOAT_DTYPES

# utils/quantize/quant_type.py QUANTIZE_DESC_REQUIRED_LIST.
QUANTIZE_VALUES = {"w8a8", "w8a8s", "w8a8sc", "w8a16", "w4a16", "w8a8_dynamic", "w8a8_pdmix", "w4a8_dynamic",
                   "w8a8_mix", "w16a16s", "w16a16sc"}
# utils/weights.py get_multi_weights_col / _row / get_replicated_weights / get_w8a8sc_weight: what each loader reads.
LOADER_READS = {"w8a8": {"weight", "deq_scale", "quant_bias", "input_scale", "input_offset"},
                "w8a8s": {"weight", "deq_scale", "quant_bias", "input_scale", "input_offset"},
                "w8a8_dynamic": {"weight", "weight_scale", "weight_offset"},
                "w8a8sc": {"weight", "deq_scale", "quant_bias", "input_scale", "input_offset", "index"}}
LOADER_TYPES = {"w8a8": {"W8A8", "W8A8S"}, "w8a8s": {"W8A8", "W8A8S"}, "w8a8_dynamic": {"W8A8_DYNAMIC"},
                "w8a8sc": {"W8A8SC"}}
# models/base/modeling.py load_input_layernorm_weight / load_post_attention_layernorm_weight: pack types
# with a norm class (any other raises AssertionError "pack type not supported").
NORM_PLAIN = {"ALL_FP", "ALL_W4A16", "ALL_W8A16", "ALL_W8A8_DYNAMIC", "ALL_W16A16SC"}
NORM_ANTI = {"ALL_W8A8_ANTI", "MIX_W8A8_ANTI", "ALL_W8A16_ANTI", "MIX_W8A16_ANTI", "ALL_W4A16_ANTI", "MIX_W4A16_ANTI",
             "ALL_W8A8_DYNAMIC_ANTI"}
NORM_SC_ANTI = {"ALL_W8A8SC_ANTI", "MIX_W8A8SC_ANTI"}
NORM_BIAS = {"ALL_W8A8", "MIX_W8A8", "ALL_W8A8SC", "MIX_W8A8SC"}
PACK_FAMILY = {"w8a8": "W8A8", "w8a8s": "W8A8", "w8a8_pdmix": "W8A8", "w8a8sc": "W8A8SC", "w8a8_dynamic": "W8A8_DYNAMIC",
               "w8a16": "W8A16", "w4a16": "W4A16"}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json")


def root_settings(out):
    """(config, quantize, merged quantization_config) as models/base/router.py config builds them."""
    cfg = out.root_config if isinstance(out.root_config, dict) else {}
    desc = out.units[0].description if out.kind == "quantized" else None
    desc = desc if isinstance(desc, dict) else {}
    q = cfg.get("quantize") or (desc.get("model_quant_type") or "").lower() or None
    q = "w8a8_pdmix" if q == "w8a8_mix" else q
    qc = dict(cfg.get("quantization_config") or {})
    had_fa, fa = "fa_quant_type" in qc, qc.get("fa_quant_type")
    qc.update(desc)
    if had_fa:
        qc["fa_quant_type"] = fa  # router.py: config.json's fa_quant_type wins
    return cfg, q, qc


def check_mindie(out, v):
    cfg, q, qc = root_settings(out)
    cfile = os.path.join(out.root, "config.json")
    # models/__init__.py get_model and runner/model_runner.py read config.json from the model root.
    if out.root_config is None:
        v("config-root", out.root, "config.json", "no config.json at the model root")
    elif "model_type" not in cfg:
        v("config-model_type", cfile, "model_type", "no model_type")
    # runner/model_runner.py: dtype = config.torch_dtype, float16 / bfloat16 only; transformers 4.30-4.43
    # (requirements/) do not read the newer `dtype` key.
    if out.root_config is not None and cfg.get("torch_dtype") not in ("float16", "bfloat16"):
        v("config-torch_dtype", cfile, "torch_dtype", f"{cfg.get('torch_dtype')!r} (dtype: {cfg.get('dtype')!r})")
    # router.py config: quantize from config.json, else the root description's model_quant_type;
    # base/config.py __check_quantize.
    if q is None:
        v("quantize-missing", cfile, "quantize", "no quantize key nor root description: int8 weights load as float")
    elif q not in QUANTIZE_VALUES:
        v("quantize-value", cfile, "quantize", f"{q!r} not in QUANTIZE_DESC_REQUIRED_LIST")
    check_quantization_config(qc, cfile, v)
    is_sc = out.is_sc or q == "w8a8sc"
    if out.kind == "parts" and not is_sc:
        # utils/weights.py Weights.__init__ joins part{rank}-of-{world} only for W8A8SC / W16A16SC;
        # every other type is read from the root and sharded at load time.
        v("layout", out.root, "-", f"MindIE reads part folders only for w8a8sc (quantize {q!r})")
        return
    if is_sc:
        check_sc_layout(out, cfg, q, v)
    for unit in out.units:
        check_unit(out, unit, q, cfg, qc, is_sc, v)


def check_quantization_config(qc, cfile, v):
    # models/base/config.py validate: __check_group_size, __check_kv_quant_type, __check_fa_quant_type.
    if qc.get("group_size", 0) not in (0, 64, 128, 256):
        v("quantization_config", cfile, "group_size", f"{qc.get('group_size')!r} not in 0/64/128/256")
    if qc.get("kv_quant_type") not in (None, "C8"):
        v("quantization_config", cfile, "kv_quant_type", f"{qc.get('kv_quant_type')!r} is not C8")
    if qc.get("fa_quant_type") not in (None, "FAQuant", "FAKQuant"):
        v("quantization_config", cfile, "fa_quant_type", f"{qc.get('fa_quant_type')!r} is not FAQuant/FAKQuant")


def check_sc_layout(out, cfg, q, v):
    # utils/weights.py Weights.__init__: W8A8SC is read from part{rank}-of-{world}/, also at TP 1, and
    # only when quantize is w8a8sc.
    if out.kind != "parts":
        v("sc-layout", out.root, "-", "W8A8SC must sit in part{rank}-of-{world}/ folders (part0-of-1 at TP 1)")
    else:
        world = out.world()
        if [p[:2] for p in out.parts] != [(i, world) for i in range(world)]:
            v("sc-parts", out.root, "-", f"parts are not part0..part{world - 1}-of-{world}: {[p[2] for p in out.parts]}")
    if q != "w8a8sc":
        v("sc-quantize", os.path.join(out.root, "config.json"), "quantize", f"{q!r}: the parts are read only for w8a8sc")
    # models/base/router.py tokenizer_path = model root; examples/convert/convert_utils.py copy_tokenizer_files.
    if not any(n in out.root_files for n in TOKENIZER_FILES):
        v("sc-tokenizer", out.root, "-", "no tokenizer file at the model root")
    # common_op_builders/linear/atb_quant_linear_common_op_builder.py is_match rejects bf16 for W8A8SC;
    # examples/convert/model_slim/sparse_compressor.py writes torch_dtype float16.
    if cfg.get("torch_dtype") != "float16":
        v("sc-fp16", os.path.join(out.root, "config.json"), "torch_dtype", f"{cfg.get('torch_dtype')!r}, W8A8SC needs float16")


def loader_quantize(model, cfg, q, linear):
    # models/deepseekv2/modeling_deepseekv2.py: attention under mla_quantize; deepseek/modeling_deepseek.py
    # init_experts: routed experts under moe_quantize; everything else under quantize.
    if model.is_mla and ".self_attn." in linear and cfg.get("mla_quantize"):
        return cfg["mla_quantize"]
    if EXPERT_RE.match(linear) and cfg.get("moe_quantize"):
        return cfg["moe_quantize"]
    return q


def check_unit(out, unit, q, cfg, qc, is_sc, v):
    d = unit.description if isinstance(unit.description, dict) else None
    # utils/weights.py _set_quant_params: quant_model_description.json, else _<quantize>.json (w8a8_dynamic
    # and w8a8_pdmix fall back to _w8a8.json).
    names = {"quant_model_description.json", f"quant_model_description_{q}.json"}
    names |= {"quant_model_description_w8a8.json"} if q in ("w8a8_dynamic", "w8a8_pdmix") else set()
    if d is None or unit.description_name not in names:
        v("description-file", unit.path, "-", f"no quant_model_description.json nor _{q}.json")
        return
    for t in unit.duplicates:  # utils/weights.py load_routing: AssertionError on a name in two files
        v("duplicate-tensor", t.file.path, t.name, "tensor also in another weight file")
    model = Model(cfg or unit.config, set(unit.tensors) | {k for k, x in d.items() if not is_meta_key(k, x)})
    for p in model.linears:
        check_linear(unit, model, loader_quantize(model, cfg, q, p), p, d, v)
    check_norms(unit, model, q, d, v)
    for name in ("lm_head.weight", "model.embed_tokens.weight"):
        t = unit.tensors.get(name)  # layers/__init__.py load_column_multi(lm_head=True): quantize None
        if t is not None and t.dtype not in FLOAT_DTYPES:
            v("head-float", t.file.path, name, f"{t.dtype}: heads and embeddings load as float")
    check_fa(unit, model, qc, v)
    if is_sc:
        check_sc_unit(out, unit, model, v)


def check_linear(unit, model, lq, p, d, v):
    w = unit.tensors.get(p + ".weight")
    t = d.get(p + ".weight")
    if w is None:
        return
    # utils/weights.py: `if qweight.dtype in [float16, bfloat16]: return qweight` — a float weight is a
    # float linear whatever the description says, an int8 one is read as the loader's type.
    if (w.dtype in FLOAT_DTYPES) != (t in (None, "FLOAT")):
        v("float-by-dtype", w.file.path, w.name, f"weight {w.dtype} but described {t}")
    if w.dtype in FLOAT_DTYPES or lq not in LOADER_READS:
        return
    if t not in LOADER_TYPES[lq]:
        lost = " (its input_scale / input_offset are never read)" if t in ("W8A8", "W8A8S") else ""
        v("loader-type", w.file.path, w.name, f"{t} linear read by the {lq} loader{lost}")
    for s in sorted(LOADER_READS[lq]):
        if f"{p}.{s}" not in unit.tensors:
            v("missing-tensor", unit.path, f"{p}.{s}", f"the {lq} loader reads it (AssertionError)")


def pack_type(d, q, names, norm):
    """utils/quantize/pack_type.py get_pack_type for one group of linears."""
    descs = {d.get(n + ".weight") for n in names if n + ".weight" in d}
    if not descs or descs == {"FLOAT"}:
        return "ALL_FP"
    family = PACK_FAMILY.get(q)
    if family is None:
        return "ALL_FP"
    anti = (norm + (".anti.weight" if q == "w8a8sc" else ".module.weight")) in d
    return ("MIX_" if len(descs) != 1 else "ALL_") + family + ("_ANTI" if anti else "")


def check_norms(unit, model, q, d, v):
    bases = sorted({m.group(1) for p in model.linears if (m := re.match(r"(.*\.layers\.\d+)\.", p))})
    groups = ((("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.query_key_value",
                "self_attn.q_a_proj", "self_attn.kv_a_proj_with_mqa"), "input_layernorm"),
              (("mlp.gate_proj", "mlp.up_proj", "mlp.gate_up_proj", "mlp.shared_experts.gate_proj",
                "mlp.shared_experts.up_proj", "mlp.shared_experts.gate_up_proj"), "post_attention_layernorm"))
    for base in bases:
        for members, norm_leaf in groups:
            names = [f"{base}.{g}" for g in members if f"{base}.{g}" in model.linears]
            norm = f"{base}.{norm_leaf}"
            if not names:
                continue
            pt = pack_type(d, q, names, norm)
            if pt not in NORM_PLAIN | NORM_ANTI | NORM_SC_ANTI | NORM_BIAS:
                v("pack-type", unit.path, norm, f"pack type {pt} has no norm class (AssertionError)")
                continue
            reads = {norm + ".weight"} if pt in NORM_PLAIN | NORM_BIAS else (
                {norm + ".weight", norm + ".module.weight"} if pt in NORM_ANTI else {norm + ".ori.weight", norm + ".anti.weight"})
            for n in sorted(reads - set(unit.tensors)):
                v("norm-tensor", unit.path, n, f"the {pt} norm class reads it")
            # layers/norm/fast_layer_norm.py: RMSNorm reads no bias; RMSNormBias / the wrappers do.
            bias = unit.tensors.get(norm + ".bias")
            vals = bias.values() if bias is not None and pt in NORM_PLAIN else None
            if vals and any(x != 0 for x in vals):
                v("norm-bias-ignored", bias.file.path, bias.name, f"non-zero bias dropped by the {pt} RMSNorm")


def check_fa(unit, model, qc, v):
    if not model.fa:
        return
    # models/base/modeling.py: FA3 is loaded only when quantization_config.fa_quant_type is set.
    if not qc.get("fa_quant_type"):
        v("fa_quant_type", unit.path, next(iter(model.fa)), "FA tensors but no fa_quant_type: they are ignored")
    if not model.is_mla and qc.get("fa_quant_type"):
        # models/base/modeling.py (and qwen2/modeling_qwen2.py) call FA3.load for every attention layer once
        # fa_quant_type is set; only the MLA loader (FA3.load_mla) takes a layer without scales as unquantized.
        attns = {p.rsplit(".", 1)[0] for p in model.linears if p.endswith((".q_proj", ".query_key_value"))}
        for attn in sorted(attns - set(model.fa)):
            v("fa-missing", unit.path, f"{attn}.fa_q.scale", "FA3.load reads every layer's scales (non-MLA)")
    for attn, got in sorted(model.fa.items()):
        # layers/attention/fa3.py FA3.load reads all six (AssertionError); load_mla reads fa_q / fa_k scales.
        need = [("fa_q", "scale"), ("fa_k", "scale")] if model.is_mla else [
            (w, k) for w in ("fa_q", "fa_k", "fa_v") for k in ("scale", "offset")]
        for w, k in need:
            if (w, k) not in got or got[(w, k)] not in unit.tensors:
                v("fa-missing", unit.path, f"{attn}.{w}.{k}", "FA3 reads it")
        rows = {"fa_q": model.heads, "fa_k": 1 if model.is_mla else model.kv_heads, "fa_v": model.kv_heads}
        for (w, k), name in got.items():
            t = unit.tensors.get(name)
            if t is not None and (w != "fa_v" or not model.is_mla) and t.numel != rows[w]:
                v("fa-shape", t.file.path, name, f"shape {t.shape}, FA3 needs {rows[w]} rows")


def check_sc_unit(out, unit, model, v):
    for p in model.linears:
        w = unit.tensors.get(p + ".weight")
        if w is None or w.dtype in FLOAT_DTYPES:
            continue
        # utils/quantize/pack_type.py calc_w8a8sc_linear_pack_type: only W8A8SC entries are compressed linears.
        if linear_type(unit, p) != "W8A8SC":
            v("sc-type", w.file.path, w.name, f"int8 weight typed {linear_type(unit, p)} in a W8A8SC part")
        # utils/weights.py get_w8a8sc_weight; msmodelslim weight_compression/compress_tools.py export_safetensors.
        if w.dtype != "I8" or len(w.shape) != 1:
            v("sc-weight", w.file.path, w.name, f"{w.dtype} {w.shape}, W8A8SC weight is a 1-D int8 stream")
        want = {"index": "I8", "deq_scale": "I64", "quant_bias": "I32", "input_scale": None, "input_offset": None}
        for s, dt in want.items():
            x = unit.tensors.get(f"{p}.{s}")
            if x is None or (dt and x.dtype != dt):
                v("sc-index", unit.path, f"{p}.{s}", f"{x.dtype if x else 'absent'}, needs {dt or 'present'}")
    # models/llama/flash_causal_llama.py (qwen2/flash_causal_qwen2.py alike): lm_head TensorHead.load_weight
    # (the part's own tensor, gathered: isLmHeadParallel) = the rank's vocabulary rows; modeling_llama.py
    # (qwen2/modeling_qwen2.py alike): W8A8SC embeddings TensorEmbedding (whole), whatever the vocabulary.
    if model.model_type not in ("llama", "qwen2"):
        return
    world, vocab = out.world(), model.vocab
    lm, emb = unit.tensors.get("lm_head.weight"), unit.tensors.get("model.embed_tokens.weight")
    if vocab and lm is not None and lm.shape and lm.shape[0] * world != vocab:
        v("sc-head", lm.file.path, lm.name, f"{lm.shape[0]} rows, the rank's share is {vocab // world}")
    if vocab and emb is not None and emb.shape and emb.shape[0] != vocab:
        v("sc-head", emb.file.path, emb.name, f"{emb.shape[0]} rows, W8A8SC reads the whole {vocab}-row table")
