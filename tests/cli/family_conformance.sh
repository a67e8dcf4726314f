#!/usr/bin/env bash
# Consumer conformance of the model families (tests/cli/family_*.sh): static W8A8, W8A8_DYNAMIC
# and st-shard TP 2 parts of each family's tiny checkpoint, checked against the MindIE and
# vllm-ascend loader rules (tests/conformance/check_consumers.py). The rules a family's output
# breaks are exactly the list below, each with the issue point that fixes it; a listed rule that
# stops failing fails this test too, so the list shrinks as the fixes land.
# Left out: the file-level rules of issue 14 a-c (layout of the safetensors files, __metadata__,
# side files, torch_dtype, a root config.json beside part folders), the same for every family and
# tracked on the fixtures by tests/cli/conformance.sh. The checker's rules name the modules of
# llama / qwen2 / DeepSeek (q_proj..., experts.N.gate_proj): they apply in full to qwen3_moe, glm
# and glm4; for mixtral (experts w1/w3/w2), chatglm and baichuan only the name-free rules do.
source "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3  # Debian's, with python3-numpy (scripts/install-deps.sh)

EXPECTED="
"
for f in qwen3_moe mixtral glm glm4 chatglm baichuan2-7b baichuan2-13b; do
  EXPECTED+="${f}_parts vllm-ascend layout  # vllm-ascend has no part{i}-of-{n}/ loader
${f}_parts mindie layout  # MindIE reads part folders only for W8A8SC
"
done

: >"$TMP/outputs.txt"
for f in qwen3_moe mixtral glm glm4 chatglm baichuan2-7b baichuan2-13b; do
  m=$TMP/$f
  $PY "$ST_TESTS/cli/tiny_family.py" "$f" "$m" --tokens "$TMP/$f.u32" || fail "tiny_family.py $f"
  expect_exit 0 "$ST_BIN/st-calibrate" "$m" --data "$TMP/$f.u32" --seq-len 16 -o "$TMP/$f.st" -q
  expect_exit 0 "$ST_BIN/st-quant-w8a8" "$m" --stats "$TMP/$f.st" -o "$TMP/${f}_w8a8" -q
  expect_exit 0 "$ST_BIN/st-quant-w8a8" "$m" --dynamic -o "$TMP/${f}_dyn" -q
  expect_exit 0 "$ST_BIN/st-shard" "$TMP/${f}_w8a8" --tp 2 -o "$TMP/${f}_parts" -q
  for k in w8a8 dyn parts; do echo "${f}_$k $TMP/${f}_$k $m" >>"$TMP/outputs.txt"; done
done
note "checking $(wc -l <"$TMP/outputs.txt") outputs against both consumers"
run_cmd python3 - "$ST_TESTS/conformance" "$TMP/outputs.txt" "$EXPECTED" <<'EOF'
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, sys.argv[1])
from check_consumers import run
FILE_LEVEL = {"safetensors-aligned", "input-metadata", "side-files", "config-torch_dtype", "config-root",
              "quantize-missing"}
expected = set()
for line in sys.argv[3].splitlines():
    fields = line.partition("#")[0].split()
    if fields:
        expected.add(tuple(fields))
got = {}
for name, path, float_dir in (line.split() for line in open(sys.argv[2])):
    for v in run({"output": path, "consumer": "both", "float": float_dir}):
        consumer, rule = v.split(":", 1)[0].split()
        if rule not in FILE_LEVEL:
            got.setdefault((name, consumer, rule), v)
bad = [f"new violation: {v}" for k, v in sorted(got.items()) if k not in expected]
bad += [f"expected failure no longer fails (remove it from the list): {' '.join(k)}" for k in sorted(expected - set(got))]
print("\n".join(bad))
sys.exit(1 if bad else 0)
EOF
[[ $LAST_RC == 0 ]] || fail "family conformance differs from the list:
$(cat "$OUT_FILE")"
