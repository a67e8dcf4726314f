#!/usr/bin/env python3
"""Checks an st-tools output against what MindIE and vllm-ascend's loaders require (../shared/CONSUMERS.md,
each rule read from the loaders' code; the rule's comment names the repository, file and function).

usage: check_consumers.py OUTPUT [--consumer vllm-ascend|mindie|both] [--float FLOAT_MODEL_DIR] [--rules]

OUTPUT is a quantized directory (quant_model_description.json + weights) or a directory of
part{i}-of-{n}/ folders (st-shard, st-compress). One line per violation on stdout:
    CONSUMER RULE: FILE: TENSOR: what is wrong
exit 0 clean, 1 violations, 2 cannot check (no such directory, nothing a loader would read).
--float also checks that every tensor, side file and __metadata__ entry of the float model survived.
--rules lists every rule with its consumer and exits.

Where the loaders' code disagrees with CONSUMERS.md the code wins; the differences:
- MindIE W8A8SC (models/llama/modeling_llama.py FlashLlamaModel): embed_tokens is read whole under w8a8sc
  whatever the vocabulary size (CONSUMERS.md: "whole unless vocab >= 128256", which is the non-SC rule).
- MindIE (utils/weights.py Weights.__init__) reads part{i}-of-{n}/ folders only for W8A8SC / W16A16SC:
  W8A8, W8A8_DYNAMIC and W8A8S part folders are no loader's input (rule "layout" for both consumers).
- vllm-ascend (_310p/quantization/methods/w8a8_base.py): the 310P W8A8S scheme has exactly msModelSlim's
  five tensors and an int64 deq_scale, so extra weight_scale / weight_offset break it (rule w8a8s-tensors).
"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from model import Model  # noqa: E402
from rules_both import check_description, check_files, check_float_model, check_quant_tensors, is_meta_key  # noqa: E402
from rules_mindie import check_mindie  # noqa: E402
from rules_vllm import check_vllm  # noqa: E402
from stfiles import Output, Unit  # noqa: E402

RULES = {
    "both": ["safetensors", "safetensors-aligned", "description-type", "description-model_quant_type",
             "description-orphan", "description-missing", "kv_b_proj-float", "fused-equal-input_scale",
             "fused-equal-input_offset", "deq_scale-dtype", "w8a8s-tensors", "float-model-missing",
             "float-model-shape", "side-files", "input-metadata"],
    "vllm-ascend": ["layout", "description-file", "config-quant_method", "model-dtype", "index-filter",
                    "description-key", "fused-members", "fused-same-type", "scheme", "moe-scheme", "moe-uniform",
                    "missing-tensor", "unexpected-tensor", "weight-dtype", "weight-shape", "scale-shape",
                    "per-tensor-shape", "input_offset-values", "norm-bias-key", "router-float", "fa-mla", "fa-type",
                    "fa-keys", "fa-shape", "fa-weight_scale"],
    "mindie": ["config-root", "config-model_type", "config-torch_dtype", "quantize-missing", "quantize-value",
               "quantization_config", "layout", "sc-layout", "sc-parts", "sc-quantize", "sc-tokenizer", "sc-fp16",
               "description-file", "duplicate-tensor", "float-by-dtype", "loader-type", "missing-tensor",
               "pack-type", "norm-tensor", "norm-bias-ignored", "head-float", "fa_quant_type", "fa-missing",
               "fa-shape", "sc-type", "sc-weight", "sc-index", "sc-head"],
}


def parse_args(argv):
    opts = {"consumer": "both", "float": None, "rules": False, "output": None}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--consumer", "--float") and i + 1 < len(argv):
            opts[a[2:]] = argv[i + 1]
            i += 2
        elif a == "--rules":
            opts["rules"] = True
            i += 1
        elif not a.startswith("--") and opts["output"] is None:
            opts["output"] = a
            i += 1
        else:
            raise ValueError(f"unexpected argument {a!r}")
    if opts["consumer"] not in ("vllm-ascend", "mindie", "both"):
        raise ValueError(f"--consumer {opts['consumer']!r}: vllm-ascend, mindie or both")
    if opts["output"] is None and not opts["rules"]:
        raise ValueError("no OUTPUT")
    return opts


def run(opts):
    """Returns the violation lines for OUTPUT (raises ValueError when it cannot be checked)."""
    root = opts["output"].rstrip("/") or "/"
    if not os.path.isdir(root):
        raise ValueError(f"{root}: not a directory")
    out = Output(root)
    if not any(u.files or u.description_name for u in out.units):
        raise ValueError(f"{root}: no weight files and no quant_model_description.json")
    lines = []

    def reporter(consumer):
        return lambda rule, file, tensor, msg: lines.append(f"{consumer} {rule}: {file}: {tensor}: {msg}")

    both = reporter("both")
    float_names = None
    if opts["float"]:
        if not os.path.isdir(opts["float"]):
            raise ValueError(f"{opts['float']}: not a directory")
        check_float_model(out, opts["float"], both)
        float_names = set(Unit(opts["float"]).tensors)
    for unit in out.units:
        check_files(unit, both)
        check_description(unit, both)
        d = unit.description if isinstance(unit.description, dict) else {}
        cfg = unit.config if isinstance(unit.config, dict) else out.root_config
        model = Model(cfg, set(unit.tensors) | {k for k, x in d.items() if not is_meta_key(k, x)})
        check_quant_tensors(unit, model, both)
    if opts["consumer"] in ("vllm-ascend", "both"):
        check_vllm(out, reporter("vllm-ascend"), float_names)
    if opts["consumer"] in ("mindie", "both"):
        check_mindie(out, reporter("mindie"))
    return lines


def main(argv):
    try:
        opts = parse_args(argv)
        if opts["rules"]:
            for consumer, rules in RULES.items():
                for r in rules:
                    print(f"{consumer} {r}")
            return 0
        lines = run(opts)
    except (ValueError, OSError) as e:
        print(f"check_consumers.py: {e}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
