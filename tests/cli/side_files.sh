#!/usr/bin/env bash
# Side files through the whole flow (issue 14): a model directory with LICENSE, README.md,
# chat_template.json, preprocessor_config.json, a binary tokenizer.model, auto_map code
# (configuration_deepseek.py, modeling_deepseek.py) and the input's __metadata__ keeps them all
# through quantize -> shard -> compress -> decompress -> merge: every file byte for byte at the
# output root (and in each part folder), config.json with auto_map, quantize and the torch_dtype
# transformers 4.x reads (the fixtures' configs only have the newer "dtype"), "format": "pt" in every
# weight file's __metadata__; and the merges stay byte-identical.
# ctest: slow
source "$(dirname "$0")/lib.sh"
source "$ST_TESTS/conformance/inputs.bash"
B=$ST_BIN

# with_model_files SRC DST: the conformance inputs' side files, auto_map code for every model, and a
# tokenizer.model that is not text.
with_model_files() {
  with_side_files "$1" "$2"
  python3 - "$2" <<'PY'
import json, sys
d = sys.argv[1]
cfg = json.load(open(f"{d}/config.json"))
cfg["auto_map"] = {"AutoConfig": "configuration_deepseek.DeepseekV3Config"}
json.dump(cfg, open(f"{d}/config.json", "w"), indent=2)
for f in ("configuration_deepseek.py", "modeling_deepseek.py"):
    open(f"{d}/{f}", "w").write(f"# {f}: remote code a trust_remote_code loader imports\n")
open(f"{d}/tokenizer.model", "wb").write(bytes(range(256)))
PY
}

# check_out DIR QUANTIZE [PARTS]: DIR (and each part folder) carries every side file of $IN.
check_out() {
  python3 - "$IN" "$@" <<'PY' || fail "side files of $2: see above"
import glob, json, os, struct, sys
src, out, quantize = sys.argv[1:4]
parts = sorted(glob.glob(f"{out}/part*-of-*"))
bad = []
for d in [out] + parts:
    for n in sorted(os.listdir(src)):
        if n.endswith(".safetensors") or n == "config.json":
            continue
        p = f"{d}/{n}"
        if not os.path.isfile(p) or open(p, "rb").read() != open(f"{src}/{n}", "rb").read():
            bad.append(f"{p}: missing or not the input's bytes")
cfg = json.load(open(f"{out}/config.json"))
want = {"auto_map": json.load(open(f"{src}/config.json"))["auto_map"], "torch_dtype": "float16"}
if quantize != "-":
    want["quantize"] = quantize
for k, v in want.items():
    if cfg.get(k) != v:
        bad.append(f"{out}/config.json: {k} is {cfg.get(k)!r}, expected {v!r}")
for f in glob.glob(f"{out}/**/*.safetensors", recursive=True):
    with open(f, "rb") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]
        md = json.loads(fh.read(n)).get("__metadata__", {})
    if md.get("format") != "pt":
        bad.append(f"{f}: __metadata__ lost the input's \"format\": \"pt\"")
print("\n".join(bad))
sys.exit(1 if bad else 0)
PY
}

IN=$TMP/llama
with_model_files "$ST_FIXTURES/llama-4m-fp16" "$IN"
expect_exit 0 "$B/st-calibrate" "$IN" --data "$ST_FIXTURES/data/calib_ids.jsonl" --samples 2 --seq-len 32 -o "$TMP/l.st" -q

note "W8A8 -> shard -> merge"
expect_exit 0 "$B/st-quant-w8a8" "$IN" --stats "$TMP/l.st" -o "$TMP/w8a8" -q
check_out "$TMP/w8a8" w8a8
expect_exit 0 "$B/st-shard" "$TMP/w8a8" --tp 2 -o "$TMP/w8a8_tp2" -q
check_out "$TMP/w8a8_tp2" w8a8
expect_exit 0 "$B/st-shard" --merge "$TMP/w8a8_tp2" -o "$TMP/w8a8_merged" -q
expect_exit 0 diff -r "$TMP/w8a8" "$TMP/w8a8_merged"

note "W8A8S -> shard -> compress -> decompress -> merge"
expect_exit 0 "$B/st-sparsify" "$IN" --stats "$TMP/l.st" -o "$TMP/w8a8s" -q
check_out "$TMP/w8a8s" w8a8s
expect_exit 0 "$B/st-shard" "$TMP/w8a8s" --tp 2 -o "$TMP/s_tp2" -q
check_out "$TMP/s_tp2" w8a8s
expect_exit 0 "$B/st-compress" "$TMP/s_tp2" -o "$TMP/sc_tp2" -q
check_out "$TMP/sc_tp2" w8a8sc
expect_exit 0 "$B/st-compress" -d "$TMP/sc_tp2" -o "$TMP/s_tp2_back" -q
expect_exit 0 diff -r "$TMP/s_tp2" "$TMP/s_tp2_back"
expect_exit 0 "$B/st-shard" --merge "$TMP/s_tp2_back" -o "$TMP/w8a8s_merged" -q
expect_exit 0 diff -r "$TMP/w8a8s" "$TMP/w8a8s_merged"

note "W8A8S at TP 1 -> compress (part0-of-1) -> decompress"
expect_exit 0 "$B/st-compress" "$TMP/w8a8s" -o "$TMP/sc_tp1" -q
[[ -d $TMP/sc_tp1/part0-of-1 ]] || fail "st-compress of one directory: no part0-of-1/ (MindIE opens part{rank}-of-{world} at TP 1)"
check_out "$TMP/sc_tp1" w8a8sc
expect_exit 0 "$B/st-compress" -d "$TMP/sc_tp1" -o "$TMP/w8a8s_back" -q
expect_exit 0 diff -r "$TMP/w8a8s" "$TMP/w8a8s_back"

note "DeepSeek W8A8_DYNAMIC through a stream (side files ride in __metadata__)"
IN=$TMP/ds
with_model_files "$ST_FIXTURES/deepseekv3-mla-6m-fp16" "$IN"
"$B/st-quant-w8a8" "$IN" --dynamic -o - -q >"$TMP/ds.safetensors" 2>"$TMP/err" || fail "quantize to stdout: $(cat "$TMP/err")"
expect_exit_in "$TMP/ds.safetensors" 0 "$B/st-shard" - --tp 2 -o "$TMP/ds_tp2" -q
check_out "$TMP/ds_tp2" w8a8_dynamic
expect_exit 0 "$B/st-shard" --merge "$TMP/ds_tp2" -o "$TMP/ds_merged" -q
expect_exit 0 cmp "$TMP/ds.safetensors" "$TMP/ds_merged"  # the stream again, side files inside
