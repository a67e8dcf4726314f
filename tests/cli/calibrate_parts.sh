#!/usr/bin/env bash
# Calibration across hosts: three workers run st-calibrate --part i/3 through GNU parallel (the
# README's --sshloginfile recipe, with this machine as the three hosts), st-calibrate --merge
# combines them, and the result is one run's statistics: the same header and metadata, every
# min / max / absmax / per-channel range / token count bit-identical, sums of squares equal up to
# float64 rounding; on llama and on DeepSeek (whose experts see different tokens in each part).
# Wrong sets of parts are refused, naming the file.
source "$(dirname "$0")/lib.sh"
CAL=$ST_FIXTURES/data/calib_ids.jsonl
command -v parallel >/dev/null || fail "GNU parallel is not installed (scripts/install-deps.sh installs it)"
printf '3/:\n' >"$TMP/hosts"  # ':' is this machine; 3 jobs at once

# same_as_one_run MERGED ONE: equal headers (names, shapes, offsets, metadata); equal bytes outside
# the sums of squares; sums of squares within 1e-12 relative (float64 sums in another order).
same_as_one_run() {
  python3 - "$1" "$2" <<'PY' || fail "merged statistics differ from one run's: $1 $2"
import json, struct, sys
def load(p):
    raw = open(p, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + n]), raw[8 + n:]
(hm, bm), (ho, bo) = load(sys.argv[1]), load(sys.argv[2])
assert hm == ho, "headers differ"
exact = sums = 0
for name, t in ho.items():
    if name == "__metadata__":
        continue
    b, e = t["data_offsets"]
    if name.endswith(".input_sumsq"):
        for x, y in zip(struct.unpack("<%dd" % ((e - b) // 8), bm[b:e]), struct.unpack("<%dd" % ((e - b) // 8), bo[b:e])):
            assert abs(x - y) <= 1e-12 * abs(y), (name, x, y)
        sums += 1
    else:
        assert bm[b:e] == bo[b:e], name + " differs"
        exact += 1
assert exact > 0 and sums > 0
print("%d tensors bit-identical, %d sums of squares within 1e-12" % (exact, sums))
PY
}

for model in llama-4m-fp16 deepseekv3-mla-6m-fp16; do
  M=$ST_FIXTURES/$model
  run=("$ST_BIN/st-calibrate" "$M" --data "$CAL" --samples 12 --seq-len 128 -q)
  expect_exit 0 "${run[@]}" -o "$TMP/one_$model.st"
  expect_exit 0 parallel --will-cite --sshloginfile "$TMP/hosts" --halt now,fail=1 \
    "${run[@]}" -j 1 --part {}/3 -o "$TMP/${model}_part{}.st" ::: 1 2 3
  # Any order: the parts are folded in part order.
  expect_exit 0 "$ST_BIN/st-calibrate" --merge "$TMP/${model}_part3.st" "$TMP/${model}_part1.st" "$TMP/${model}_part2.st" \
    -o "$TMP/merged_$model.st"
  expect_stderr_contains "merged 3 parts: 12 samples"
  same_as_one_run "$TMP/merged_$model.st" "$TMP/one_$model.st"
done
M=$ST_FIXTURES/llama-4m-fp16
P=$TMP/llama-4m-fp16_part
# The merged statistics name the whole data, as one run's do: st-sparsify's SparseGPT runs on it
# without --data. A part's name their slice, and st-sparsify does not take them for the whole data.
expect_exit 0 "$ST_BIN/st-sparsify" "$M" --stats "$TMP/merged_llama-4m-fp16.st" -o "$TMP/s_merged"
expect_stderr_contains "pruned by sparsegpt"
expect_exit 2 "$ST_BIN/st-sparsify" "$M" --stats "${P}2.st" -o "$TMP/s_part"
expect_stderr_one_line
expect_stderr_contains "these statistics are part 2/3 of a calibration run, not of all its data (merge the parts: st-calibrate --merge): give --data FILE"
expect_no_file "$TMP/s_part"
expect_exit 0 python3 -c 'import json,struct,sys; r=open(sys.argv[1],"rb").read(); m=json.loads(r[8:8+struct.unpack("<Q",r[:8])[0]])["__metadata__"]; assert m["st.stats.part"] == "2/3" and m["st.stats.samples"] == "4" and m["st.stats.part_sequences"] == "12", m' "${P}2.st"

# Wrong sets of parts: one line naming the file, nothing written.
merge_refused() {
  local want=$1
  shift
  expect_exit 2 "$ST_BIN/st-calibrate" --merge "$@" -o "$TMP/bad.st"
  expect_stderr_one_line
  expect_stderr_contains "$want"
  expect_no_file "$TMP/bad.st"
}
merge_refused "part 2/3 is missing (2 of 3 given)" "${P}1.st" "${P}3.st"
merge_refused "'${P}1.st': part 1/3 is given twice, also as '${P}1.st'" "${P}1.st" "${P}2.st" "${P}3.st" "${P}1.st"
merge_refused "'$TMP/one_llama-4m-fp16.st': not the statistics of a part" "${P}1.st" "$TMP/one_llama-4m-fp16.st"
# (The model's path may differ between hosts; another model shows in its shapes.)
merge_refused "'$TMP/deepseekv3-mla-6m-fp16_part2.st': tensor 'model.layers.0.mlp.down_proj': statistics of 768 input channels, 688 in those it merges with: another model?" \
  "${P}1.st" "${P}3.st" "$TMP/deepseekv3-mla-6m-fp16_part2.st"
expect_exit 0 "$ST_BIN/st-calibrate" "$M" --data "$CAL" --samples 13 --seq-len 128 -q -j 1 --part 2/3 -o "$TMP/other2.st"
merge_refused "'$TMP/other2.st': part 2/3 differs from part 1 ('${P}1.st') in st.stats.part_ids_xxh3: not parts of one run" \
  "${P}1.st" "$TMP/other2.st" "${P}3.st"
expect_exit 0 "$ST_BIN/st-calibrate" "$M" --data "$CAL" --samples 12 --seq-len 128 -q -j 1 --part 2/2 -o "$TMP/half2.st"
merge_refused "'$TMP/half2.st': part 2/2 of another split than '${P}1.st' (3 parts)" "${P}1.st" "$TMP/half2.st"
merge_refused "'$CAL': header length" "${P}1.st" "$CAL"
expect_exit 2 "$ST_BIN/st-calibrate" --merge "${P}1.st" "${P}2.st" "${P}3.st" -o "${P}1.st" -f
expect_stderr_one_line
expect_exit 2 "$ST_BIN/st-calibrate" "$M" --merge "${P}1.st" -o "$TMP/bad.st"
expect_stderr_contains "--merge takes statistics files only"

# Bad --part values: a usage error before anything runs.
for bad in 0/3 4/3 1/0 3 /3 1/ 1/2/3 -1/3 a/b; do
  expect_exit 2 "${run[@]}" --part "$bad" -o "$TMP/bad.st"
  expect_stderr_one_line
  expect_stderr_contains "part '$bad'"
done
expect_exit 2 "${run[@]}" --part 13/13 -o "$TMP/bad.st"
expect_stderr_contains "cannot cut 12 sequences into 13 parts"
expect_no_file "$TMP/bad.st"
