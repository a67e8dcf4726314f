"""Rules both consumers share (CONSUMERS.md "Both consumers"), plus the float-model rules (--float)."""
import os

from stfiles import DTYPE_BYTES, FLOAT_DTYPES, WeightFile

# msmodelslim pytorch/llm_ptq/llm_ptq_tools/llm_ptq_utils.py QuantType (UNKNOWN excepted).
QUANT_TYPES = {"W8A16", "W4A16", "W8A8", "W8A8S", "W8A8SC", "FLOAT", "C8", "FAQuant", "NF4", "W8A8_DYNAMIC",
               "W4A8_DYNAMIC", "W8A8_TIMESTEP", "W8A8_MIX", "W4A4_FLATQUANT_DYNAMIC", "W16A16S", "W16A16SC"}
# Top-level keys check_description skips (QuantModelJsonDescription *_name), and the optional block
# modelslim_v1 save/ascendv1.py post_run writes.
DESCRIPTION_META = {"model_quant_type", "kv_cache_type", "fa_quant_type", "version", "group_size", "kv_quant_type",
                    "reduce_quant_type", "metadata", "optional"}
# What msModelSlim writes for a W8A8S linear (llm_ptq_tools/save/complex_quantifier.py: weight, [bias], then
# input_scale, input_offset, quant_bias, deq_scale; weight_scale / weight_offset only for W8A8 and the
# dynamic / weight-only types); vllm_ascend/_310p/quantization/methods/w8a8_base.py creates exactly these.
W8A8S_SUFFIXES = {"weight", "input_scale", "input_offset", "quant_bias", "deq_scale", "bias"}


def is_meta_key(key, value):
    # ascendv1.py update_fa_quant_type writes "<attn>.quant_type": "INT8" (a strategy string, not a type).
    return key in DESCRIPTION_META or key.endswith(".quant_type") or isinstance(value, (dict, list))


def linear_type(unit, prefix):
    d = unit.description if isinstance(unit.description, dict) else {}
    return d.get(prefix + ".weight")


def allclose(values):
    # MindIE weights.py get_per_tensor_sharded: torch.allclose(tensor, tensor[0]) (rtol 1e-5, atol 1e-8).
    return all(abs(v - values[0]) <= 1e-8 + 1e-5 * abs(values[0]) for v in values)


def check_files(unit, v):
    if not unit.files:
        v("safetensors", unit.path, "-", "no .safetensors weight file")
    for wf in unit.files:
        # safetensors src/tensor.rs Metadata::validate, read_metadata (safe_open in both loaders).
        if wf.error:
            v("safetensors", wf.path, "-", wf.error)
            continue
        # safetensors src/tensor.rs prepare(): the reference writer pads the header so data starts at a
        # multiple of 8 and orders tensors by descending alignment, so every tensor sits at a multiple
        # of its element size; a zero-copy (mmap) loader needs that.
        if wf.data_start % 8:
            v("safetensors-aligned", wf.path, "-", f"data starts at byte {wf.data_start}, not a multiple of 8")
        for t in wf.tensors:
            if (wf.data_start + t.begin) % DTYPE_BYTES[t.dtype]:
                v("safetensors-aligned", wf.path, t.name,
                  f"{t.dtype} data at byte {wf.data_start + t.begin}, not a multiple of {DTYPE_BYTES[t.dtype]}")


def check_description(unit, v):
    d = unit.description
    if unit.description_error or (d is not None and not isinstance(d, dict)):
        v("description-type", os.path.join(unit.path, unit.description_name), "-",
          f"not a JSON object: {unit.description_error or type(d).__name__}")
        return
    if d is None:
        return  # each consumer's description-file rule reports it
    dfile = os.path.join(unit.path, unit.description_name)
    # msmodelslim llm_ptq_utils.py QuantModelJsonDescription.check_description.
    if "model_quant_type" not in d:
        v("description-model_quant_type", dfile, "-", "no model_quant_type")
    elif d["model_quant_type"] not in QUANT_TYPES:
        v("description-type", dfile, "model_quant_type", f"{d['model_quant_type']!r} is not a msModelSlim QuantType")
    for key, value in d.items():
        if is_meta_key(key, value):
            continue
        if value not in QUANT_TYPES:
            v("description-type", dfile, key, f"{value!r} is not a msModelSlim QuantType")
        if key not in unit.tensors:
            v("description-orphan", dfile, key, "described but not in any weight file")
    # msmodelslim check_description_match: the weight keys must be a subset of the description keys.
    for name, t in unit.tensors.items():
        if name not in d:
            v("description-missing", t.file.path, name, "tensor has no description entry")


def check_quant_tensors(unit, model, v):
    # vllm-ascend mla_v1.py process_weights_after_loading asserts kv_b_proj is unquantized; MindIE
    # process_mla_linear.py preprocess_kv_weights splits the weight only; msmodelslim
    # example/DeepSeek/quant_deepseek_w8a8.py keeps it float.
    for p in model.linears:
        if p.endswith(".kv_b_proj"):
            t = unit.tensors.get(p + ".weight")
            if linear_type(unit, p) not in (None, "FLOAT") or (t and t.dtype not in FLOAT_DTYPES):
                v("kv_b_proj-float", t.file.path if t else unit.path, p + ".weight",
                  f"kv_b_proj is {linear_type(unit, p)} / {t.dtype if t else 'absent'}, the loaders need it float")
    # vllm linear.py QKV/MergedColumnParallelLinear.weight_loader keeps the last shard's input_scale;
    # MindIE weights.py get_per_tensor_sharded raises ValueError unless they are equal (DeepSeek:
    # weight_wrapper_deepseekv2.py register_layer_attn uses q_a_proj's).
    for group in model.fused_groups():
        for suffix in ("input_scale", "input_offset"):
            ts = [unit.tensors.get(f"{p}.{suffix}") for p in group]
            if len([t for t in ts if t]) < 2:
                continue
            vals = [t.values() for t in ts if t]
            flat = [x for vs in vals if vs for x in vs]
            if flat and not allclose(flat):
                v(f"fused-equal-{suffix}", ts[0].file.path if ts[0] else unit.path, group[0] + "." + suffix,
                  f"{suffix} differs across {', '.join(g.rsplit('.', 1)[1] for g in group)}: {flat}")
    # vllm-ascend w8a8_static.py get_perchannel_param: deq_scale int64 for float16, float32 for bfloat16;
    # MindIE weights.py correct_tensor_dtype keeps fp32 only for bf16; msmodelslim deqscale2int64_by_dtype.
    want = {"float16": "I64", "bfloat16": "F32"}.get(model.dtype())
    for name, t in unit.tensors.items():
        if want and name.endswith(".deq_scale") and t.dtype != want:
            v("deq_scale-dtype", t.file.path, name, f"{t.dtype}, a {model.dtype()} model needs {want}")
    for p in model.linears:
        if linear_type(unit, p) == "W8A8S":
            for name in [n for n in unit.tensors if n.startswith(p + ".")]:
                if name[len(p) + 1:] not in W8A8S_SUFFIXES:
                    v("w8a8s-tensors", unit.tensors[name].file.path, name,
                      "msModelSlim's W8A8S has no such tensor (a loader mapping names to parameters rejects it)")


def check_float_model(out, float_dir, v):
    """--float: every tensor, side file and __metadata__ entry of the float model survives."""
    files = [WeightFile(os.path.join(float_dir, n)) for n in sorted(os.listdir(float_dir)) if n.endswith(".safetensors")]
    names = {t.name: t for wf in files for t in wf.tensors}
    have = {}
    for u in out.units:
        have.update(u.tensors)
    # Every model class creates a parameter per float tensor (vllm load_weights params_dict, MindIE get_tensor).
    for name, t in names.items():
        got = have.get(name)
        if got is None and not _packed_member(name, have):
            v("float-model-missing", out.root, name, "float model tensor absent from the output")
        elif got is not None and out.kind == "quantized" and got.shape != t.shape and not is_sc_weight(got, have):
            v("float-model-shape", got.file.path, name, f"shape {got.shape}, float model {t.shape}")
    side = [n for n in sorted(os.listdir(float_dir)) if os.path.isfile(os.path.join(float_dir, n))
            and not n.endswith(".safetensors") and n != "model.safetensors.index.json" and not n.startswith(".")]
    for n in side:
        if n not in out.root_files:
            v("side-files", out.root, n, "non-weight file of the input missing at the output root")
        elif n != "config.json" and _read(os.path.join(float_dir, n)) != _read(os.path.join(out.root, n)):
            v("side-files", out.root, n, "differs from the input's copy")
    meta = {}
    for wf in files:
        meta.update(wf.metadata)
    for u in out.units:
        for wf in u.files:
            for k, val in meta.items():
                if not wf.error and wf.metadata.get(k) != val:
                    v("input-metadata", wf.path, "__metadata__", f"input entry {k!r}: {val!r} not kept")


def is_sc_weight(t, tensors):
    # A W8A8SC weight is a 1-D compressed stream beside its .index (msmodelslim compress_tools.py).
    return t.name.endswith(".weight") and t.name[:-len("weight")] + "index" in tensors


def _packed_member(name, have):
    # st-shard packs q/k/v and gate/up of a part into one linear (MindIE's W8A8SC names; Mixtral's
    # expert w1 / w3 are its gate / up).
    for a, b in ((".k_proj.", ".query_key_value."), (".v_proj.", ".query_key_value."), (".up_proj.", ".gate_up_proj."),
                 (".q_proj.", ".query_key_value."), (".gate_proj.", ".gate_up_proj."), (".w1.", ".gate_up_proj."),
                 (".w3.", ".gate_up_proj.")):
        if a in name and name.replace(a, b) in have:
            return True
    return False


def _read(path):
    with open(path, "rb") as f:
        return f.read()

