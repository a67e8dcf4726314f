# Attention quantization's statistic and fallback (issue 13 points 4 and 5): st-calibrate records
# msModelSlim's FA3 recall window per head; --fa-stat picks the scales' statistic (checked against
# the statistics file); --fa-fallback N keeps the N attention blocks of largest estimated int8 noise
# float, named on stderr and in --dry-run, written as msModelSlim's rollback (no tensors, no MLA
# quant_type), accepted by st-verify, st-eval, st-shard and both loaders' rules; bad use is a
# one-line error, exit 2, nothing written.
# ctest: slow
source "$(dirname "$0")/lib.sh"
Q=$ST_BIN/st-quant-w8a8
L=$ST_FIXTURES/llama-4m-fp16
DS=$ST_FIXTURES/deepseekv3-mla-6m-fp16
EVAL=(--data "$ST_FIXTURES/data/eval_512x128.u32" --seq-len 512 --samples 2)
for m in "$L:llama" "$DS:ds"; do
  expect_exit 0 "$ST_BIN/st-calibrate" "${m%%:*}" --data "$ST_FIXTURES/data/calib_ids.jsonl" --samples 4 \
    --seq-len 128 -o "$TMP/${m##*:}.st" -q
done

note "--fa-stat: q and k scales from the recall window or the absmax, v from the absmax"
expect_exit 0 "$Q" "$L" --stats "$TMP/llama.st" --fa-quant --fa-stat recall -o "$TMP/recall" -q
expect_exit 0 "$Q" "$L" --stats "$TMP/llama.st" --fa-quant -o "$TMP/absmax" -q  # the default
check_scales() {  # OUT STAT: every fa scale is its statistic / 127 (fp16), q and k from STAT, v from the absmax
  python3 - "$TMP/llama.st" "$1/quant_model_weight_w8a8.safetensors" "$2" <<'EOF'
import json, struct, sys
def load(path):
    f = open(path, "rb"); n = struct.unpack("<Q", f.read(8))[0]; h = json.loads(f.read(n)); h.pop("__metadata__", None)
    buf = f.read(); out = {}
    for k, v in h.items():
        b = buf[v["data_offsets"][0]:v["data_offsets"][1]]
        if v["dtype"] in ("F32", "F16"):
            c = "f" if v["dtype"] == "F32" else "e"
            out[k] = list(struct.unpack(f"<{len(b) // struct.calcsize(c)}{c}", b))
    return out
def f16(x):  # x / 127 in fp32, stored as fp16 (round to nearest even)
    return struct.unpack("e", struct.pack("e", struct.unpack("f", struct.pack("f", x / 127))[0]))[0]
stats, out, stat = load(sys.argv[1]), load(sys.argv[2]), sys.argv[3]
clipped = 0
for i in range(4):
    a = f"model.layers.{i}.self_attn"
    for w in "qkv":
        src = stats[f"{a}.{w}_{stat if w != 'v' else 'absmax'}"]
        assert out[f"{a}.fa_{w}.scale"] == [f16(x) for x in src], (a, w)
        if w != "v":
            pairs = list(zip(stats[f"{a}.{w}_recall"], stats[f"{a}.{w}_absmax"]))
            assert all(r <= m for r, m in pairs), (a, w)
            clipped += sum(r < m for r, m in pairs)
assert clipped > 0, "the recall window clipped no head"
print("ok")
EOF
}
run_cmd check_scales "$TMP/recall" recall
expect_stdout_contains ok
run_cmd check_scales "$TMP/absmax" absmax
expect_stdout_contains ok

note "--fa-fallback 1: the block named, rolled back as msModelSlim writes it, accepted by every tool"
for m in "$L:llama:W8A8:w8a8" "$DS:ds:W8A8_DYNAMIC:w8a8_dynamic"; do
  IFS=: read -r model st type file <<<"$m"
  expect_exit 0 "$Q" "$model" --stats "$TMP/$st.st" --fa-quant --fa-fallback 1 --dry-run
  expect_stdout_matches '^note: fa-fallback: model\.layers\.[0-3]\.self_attn kept float \(estimated int8 q/k/v noise/signal [0-9.e-]+\)$'
  block=$(sed -n 's/^note: fa-fallback: \(model\.layers\.[0-3]\.self_attn\) kept float.*/\1/p' "$OUT_FILE")
  expect_exit 0 "$Q" "$model" --stats "$TMP/$st.st" --fa-quant --fa-fallback 1 -o "$TMP/$st-fb"
  expect_stderr_contains "warning: fa-fallback: $block kept float"
  run_cmd python3 - "$TMP/$st-fb" "$block" "$file" <<'EOF'
import json, struct, sys
out, block, file = sys.argv[1], sys.argv[2], sys.argv[3]
d = json.load(open(f"{out}/quant_model_description.json"))
f = open(f"{out}/quant_model_weight_{file}.safetensors", "rb"); n = struct.unpack("<Q", f.read(8))[0]; h = json.loads(f.read(n))
assert h["__metadata__"]["st.fa.fallback"] == block, h["__metadata__"]
for i in range(4):
    a = f"model.layers.{i}.self_attn"
    names = [f"{a}.fa_{w}.{k}" for w in "qkv" for k in ("scale", "offset")]
    present = [x in h and x in d for x in names]
    assert present == [a != block] * 6, (a, present)
    if "kv_a_proj_with_mqa" in str(h.keys()):
        assert (f"{a}.quant_type" in d) == (a != block), a
print("ok")
EOF
  expect_stdout_contains ok
  expect_exit 0 "$ST_BIN/st-verify" "$TMP/$st-fb" --against "$model"
  expect_stdout_matches "^ok: quantized .* \\($type\\)"
  expect_exit 0 "$ST_BIN/st-eval" "$model" --quant "$TMP/$st-fb" "${EVAL[@]}" -q
  expect_exit 0 "$ST_BIN/st-shard" "$TMP/$st-fb" --tp 2 -o "$TMP/$st-parts" -q
  expect_exit 0 "$ST_BIN/st-verify" "$TMP/$st-parts"
  expect_exit 0 "$ST_BIN/st-shard" --merge "$TMP/$st-parts" -o "$TMP/$st-merged" -q
  expect_same "$TMP/$st-fb/quant_model_weight_$file.safetensors" "$TMP/$st-merged/quant_model_weight_$file.safetensors"
  # A block whose scales are missing without the fallback's record is still a fault.
  python3 - "$TMP/$st-fb/quant_model_weight_$file.safetensors" <<'EOF'
import json, struct, sys
p = sys.argv[1]; b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
h["__metadata__"]["st.fa.fallback"] = "model.layers.9.self_attn"
t = json.dumps(h).encode(); t += b" " * (-len(t) % 8)
open(p, "wb").write(struct.pack("<Q", len(t)) + t + b[8 + n:])
EOF
  rm -f "$TMP/$st-fb/"*.xxh3
  expect_exit 1 "$ST_BIN/st-verify" "$TMP/$st-fb"
  expect_stdout_contains "$block.fa_q.scale"
done
# DeepSeek's rolled-back output meets both loaders' rules (only issue 14's layout rules may remain).
run_cmd python3 "$ST_TESTS/conformance/check_consumers.py" "$TMP/ds-merged" --consumer both
grep -vE ' (safetensors-aligned|input-metadata|side-files|config-torch_dtype): ' "$OUT_FILE" >"$TMP/left" || true
[[ ! -s $TMP/left ]] || fail "the FAKQuant fallback output breaks loader rules:
$(cat "$TMP/left")"

# Every block kept float: no fa_quant_type either (as msModelSlim writes it only with a scale).
expect_exit 0 "$Q" "$DS" --stats "$TMP/ds.st" --fa-quant --fa-fallback 9 -o "$TMP/ds-all" -q
grep -q fa_quant_type "$TMP/ds-all/quant_model_description.json" && fail "fa_quant_type without any attention scale"
expect_exit 0 "$ST_BIN/st-verify" "$TMP/ds-all"

note "a recipe's fa_stat and fa_fallback, the command line winning"
echo '{"fa_quant": true, "fa_stat": "recall", "fa_fallback": 1}' >"$TMP/fa.json"
expect_exit 0 "$Q" "$L" --stats "$TMP/llama.st" --recipe "$TMP/fa.json" -o "$TMP/rfa" -q
cmp -s "$TMP/rfa/quant_model_weight_w8a8.safetensors" "$TMP/recall/quant_model_weight_w8a8.safetensors" &&
  fail "the recipe's fa_fallback was not applied"
expect_exit 0 "$Q" "$L" --stats "$TMP/llama.st" --recipe "$TMP/fa.json" --fa-fallback 0 -o "$TMP/rfa0" -q
expect_same "$TMP/rfa0/quant_model_weight_w8a8.safetensors" "$TMP/recall/quant_model_weight_w8a8.safetensors"

note "bad use: one line, exit 2, nothing written"
expect_exit 2 "$Q" "$L" --stats "$TMP/llama.st" --fa-fallback 1 -o "$TMP/x"
expect_stderr_one_line
expect_stderr_contains "--fa-fallback goes with --fa-quant"
expect_no_file "$TMP/x"
expect_exit 2 "$Q" "$L" --stats "$TMP/llama.st" --fa-quant --fa-stat p99 -o "$TMP/x"
expect_no_file "$TMP/x"
expect_exit 2 "$Q" "$L" --fa-quant --fa-fallback 1 --dry-run
expect_stderr_contains "--dry-run --fa-fallback needs --stats STATS"
