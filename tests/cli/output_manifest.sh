#!/usr/bin/env bash
# Output manifest: every tool on every fixture with the option combinations the suite uses, each
# output file (and each command's stdout) hashed and compared with tests/cli/golden/output_manifest.txt.
# It proves that moving code changes no byte. A change that alters outputs on purpose regenerates
# the manifest (ST_UPDATE_GOLDEN=1) and says why in its commit message.
source "$(dirname "$0")/lib.sh"
B=$ST_BIN
D=$TMP/run
mkdir -p "$D/out"
cd "$D"
ln -s "$ST_FIXTURES" fx
L=fx/llama-4m-fp16 BF=fx/llama-4m-bf16 DS=fx/deepseekv3-mla-6m-fp16
CAL=fx/data/calib_ids.jsonl EVAL=fx/data/eval_512x128.u32

# run NAME CMD...: CMD must exit 0; its stdout is kept as out/NAME.stdout (stderr is chatter).
run() {
  local name=$1
  shift
  run_cmd "$@" </dev/null
  [[ $LAST_RC == 0 ]] || fail "$name: expected exit 0, got $LAST_RC"
  cp "$OUT_FILE" "out/$name.stdout"
}
# run_rc NAME CODE CMD...: the same for a command whose exit code is CODE (st-inspect --diff: 1).
run_rc() {
  local name=$1 code=$2
  shift 2
  run_cmd "$@" </dev/null
  [[ $LAST_RC == "$code" ]] || fail "$name: expected exit $code, got $LAST_RC"
  cp "$OUT_FILE" "out/$name.stdout"
}

note "calibrate"
run cal_llama "$B/st-calibrate" $L --data $CAL --samples 8 --seq-len 256 -o out/llama.st -q
run cal_bf16 "$B/st-calibrate" $BF --data $CAL --samples 8 --seq-len 256 -o out/bf16.st -q
run cal_ds "$B/st-calibrate" $DS --data $CAL --samples 8 --seq-len 256 -o out/ds.st -q
for i in 1 2; do
  run cal_ds_part$i "$B/st-calibrate" $DS --data $CAL --samples 8 --seq-len 256 --part $i/2 -o out/ds_part$i.st -q
done
run cal_ds_merge "$B/st-calibrate" --merge out/ds_part2.st out/ds_part1.st -o out/ds_merged.st -q

note "quantize"
TB=(--anti-outlier none --act-method minmax)
for m in llama:$L bf16:$BF ds:$DS; do
  n=${m%%:*} p=${m#*:}
  run q_${n}_dyn "$B/st-quant-w8a8" $p --dynamic -o out/q_${n}_dyn -q
  run q_${n}_static "$B/st-quant-w8a8" $p --stats out/$n.st -o out/q_${n}_static -q
  run q_${n}_textbook "$B/st-quant-w8a8" $p --stats out/$n.st "${TB[@]}" -o out/q_${n}_textbook -q
  run q_${n}_fa "$B/st-quant-w8a8" $p --stats out/$n.st --fa-quant -o out/q_${n}_fa -q
done
run q_ds_fa_textbook "$B/st-quant-w8a8" $DS --stats out/ds.st --fa-quant "${TB[@]}" -o out/q_ds_fa_textbook -q
for m in llama:$L ds:$DS; do
  n=${m%%:*} p=${m#*:}
  run q_${n}_fa_recall "$B/st-quant-w8a8" $p --stats out/$n.st --fa-quant --fa-stat recall -o out/q_${n}_fa_recall -q
  run q_${n}_fa_fb1 "$B/st-quant-w8a8" $p --stats out/$n.st --fa-quant --fa-fallback 1 -o out/q_${n}_fa_fb1 -q
done
run q_llama_sq "$B/st-quant-w8a8" $L --stats out/llama.st --anti-outlier smoothquant:0.5 -o out/q_llama_sq -q
run q_llama_sqall "$B/st-quant-w8a8" $L --stats out/llama.st --anti-outlier smoothquant-all:0.5 -o out/q_llama_sqall -q
run q_llama_mse "$B/st-quant-w8a8" $L --stats out/llama.st --anti-outlier none --act-method mse -o out/q_llama_mse -q
run q_llama_float "$B/st-quant-w8a8" $L --stats out/llama.st --float '*.down_proj' --fallback 1 -o out/q_llama_float -q
run q_ds_fallback "$B/st-quant-w8a8" $DS --stats out/ds.st --fallback 2 -o out/q_ds_fallback -q
run q_llama_split "$B/st-quant-w8a8" $L --dynamic --max-file-size 2M -o out/q_llama_split -q
run q_llama_stream_out "$B/st-quant-w8a8" $L --dynamic -o - -q
# Per-linear schemes: every DeepSeek linear static by a rule; a llama mix from a recipe; the plans.
run q_ds_allstatic "$B/st-quant-w8a8" $DS --stats out/ds.st --scheme '*=W8A8' -o out/q_ds_allstatic -q
printf '{"rules": ["*.mlp.*=W8A8_DYNAMIC", "*.self_attn.o_proj=FLOAT"], "act_method": "mse"}\n' >recipe.json
run q_llama_recipe "$B/st-quant-w8a8" $L --stats out/llama.st --recipe recipe.json -o out/q_llama_recipe -q
run q_ds_dry "$B/st-quant-w8a8" $DS --dry-run
run q_llama_dry_json "$B/st-quant-w8a8" $L --recipe recipe.json --dry-run --json
mv out/q_llama_stream_out.stdout out/q_llama_stream_out.safetensors

note "shard"
run sh_llama_float "$B/st-shard" $L --tp 2 -o out/sh_llama_float -q
run sh_llama_static "$B/st-shard" out/q_llama_static --tp 2 -o out/sh_llama_static -q
run sh_llama_nopack "$B/st-shard" out/q_llama_textbook --tp 4 --no-pack -o out/sh_llama_nopack -q
run sh_llama_repl "$B/st-shard" out/q_llama_dyn --tp 2 --replicate-embeddings -o out/sh_llama_repl -q
run sh_ds_fa "$B/st-shard" out/q_ds_fa --tp 2 -o out/sh_ds_fa -q
run sh_bf16_static "$B/st-shard" out/q_bf16_static --tp 2 -o out/sh_bf16_static -q
run sh_dry "$B/st-shard" out/q_llama_static --tp 2 --dry-run
run_cmd "$B/st-shard" - --tp 2 -o out/sh_stream -q <out/q_llama_stream_out.safetensors
[[ $LAST_RC == 0 ]] || fail "shard from a stream: exit $LAST_RC"
run mg_llama_static "$B/st-shard" --merge out/sh_llama_static -o out/mg_llama_static -q
run mg_ds_fa "$B/st-shard" --merge out/sh_ds_fa -o out/mg_ds_fa -q
run mg_llama_float "$B/st-shard" --merge out/sh_llama_float -o out/mg_llama_float.safetensors -q
# A float stream carries its config in __metadata__ (st.file.config.json).
python3 - $L "$D/float_stream.safetensors" <<'PY'
import json, struct, sys
src, dst = sys.argv[1], sys.argv[2]
raw = open(src + "/model.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n])
h["__metadata__"] = {"st.file.config.json": open(src + "/config.json").read()}
text = json.dumps(h).encode()
text += b" " * (-(8 + len(text)) % 8)
open(dst, "wb").write(struct.pack("<Q", len(text)) + text + raw[8 + n:])
PY
run_cmd "$B/st-quant-w8a8" - --stats out/llama.st "${TB[@]}" -o out/q_llama_stream_in -q <float_stream.safetensors
[[ $LAST_RC == 0 ]] || fail "quantize from a stream: exit $LAST_RC"

note "sparsify + compress"
run sp_wanda "$B/st-sparsify" $L --stats out/llama.st --method wanda -o out/sp_wanda -q
run sp_magnitude "$B/st-sparsify" $L --stats out/llama.st --method magnitude "${TB[@]}" -o out/sp_magnitude -q
run sp_nm "$B/st-sparsify" $L --stats out/llama.st --method nm --nm 2:4 --json -o out/sp_nm -q
run sp_gpt "$B/st-sparsify" $L --stats out/llama.st --method sparsegpt --data $CAL --samples 4 --seq-len 128 \
  --ratio 0.25 -o out/sp_gpt -q
run sp_default "$B/st-sparsify" $L --stats out/llama.st --ratio 0.25 -o out/sp_default -q
run sp_ds "$B/st-sparsify" $DS --stats out/ds.st --method wanda --float 'model.layers.*.mlp.experts.*' -o out/sp_ds -q
run sp_rules "$B/st-sparsify" $L --stats out/llama.st --method wanda --scheme 'model.layers.0.*=FLOAT' -o out/sp_rules -q
run sh_sp "$B/st-shard" out/sp_wanda --tp 2 -o out/sh_sp -q
run cz_sp "$B/st-compress" out/sh_sp -o out/cz_sp --json -q
run dz_sp "$B/st-compress" -d out/cz_sp -o out/dz_sp -q
run cz_flat "$B/st-compress" out/sp_ds -o out/cz_flat --level 9 -q

note "fp8 (DeepSeek-style release made from the DeepSeek fixture)"
python3 "$ST_TESTS/cli/fp8_checkpoint.py" make $DS fp8 --shards 2
run cast_bf16 "$B/st-cast" fp8 --to bf16 -o out/cast_bf16 -q
run cast_f16 "$B/st-cast" fp8 --to f16 -o out/cast_f16.safetensors -q
run cal_fp8 "$B/st-calibrate" fp8 --data $CAL --samples 8 --seq-len 256 -o out/fp8.st -q
run q_fp8_static "$B/st-quant-w8a8" fp8 --stats out/fp8.st -o out/q_fp8_static -q
run q_fp8_dyn "$B/st-quant-w8a8" fp8 --dynamic -o out/q_fp8_dyn -q
run sh_fp8 "$B/st-shard" fp8 --tp 1 --no-pack -o out/sh_fp8 -q
run in_fp8 "$B/st-inspect" fp8 --stats
run ve_fp8 "$B/st-verify" fp8
run ev_fp8 "$B/st-eval" fp8 --quant out/q_fp8_static --data $EVAL --samples 2 --seq-len 64 --json -q

note "inspect, verify, eval"
run in_llama "$B/st-inspect" $L
run in_llama_json "$B/st-inspect" $L --json
run in_stats "$B/st-inspect" out/q_llama_static --stats --json
run in_parts "$B/st-inspect" out/sh_ds_fa
run in_filter "$B/st-inspect" $DS --filter '*experts.[0-3].*' --stats
run_rc in_diff 1 "$B/st-inspect" --diff out/q_llama_static out/q_llama_dyn
run_rc in_diff_detail 1 "$B/st-inspect" --diff --detail out/q_llama_static out/q_llama_dyn
run in_metadata "$B/st-inspect" --metadata out/sp_gpt
run_rc in_diff_values 1 "$B/st-inspect" --diff --values out/q_llama_static out/q_llama_textbook --json
run ve_static "$B/st-verify" out/q_llama_static --against $L --json
run ve_ds "$B/st-verify" out/q_ds_fa --against $DS
run ve_parts "$B/st-verify" out/sh_llama_static --json
run ve_sc "$B/st-verify" out/cz_sp
run ev_quant "$B/st-eval" $L --quant out/q_llama_static --data $EVAL --samples 2 --seq-len 64 --json -q
run ev_ds "$B/st-eval" $DS --quant out/sh_ds_fa --data $EVAL --samples 2 --seq-len 64 --json -q

note "tokenize"
run tok_calib "$B/st-tokenize" $L fx/data/calib_text.jsonl
run tok_pack "$B/st-tokenize" --pack 512 -j 2 $L fx/data/eval_text.jsonl -q
run tok_count "$B/st-tokenize" --count $L fx/data/eval_text.jsonl
run tok_decode "$B/st-tokenize" --decode $L fx/reference/eval_text_hf_ids.jsonl
run cal_text "$B/st-calibrate" $L --data fx/data/calib_text.jsonl --samples 4 --seq-len 256 -o out/cal_text.st -q
run ev_text "$B/st-eval" $L --data fx/data/eval_text.jsonl --samples 2 --json -q

note "model families"
# Tiny random checkpoints of the other families (tests/cli/tiny_family.py, seeded; hashed too).
for f in qwen3_moe mixtral glm4 chatglm baichuan2-7b; do
  /usr/bin/python3 "$ST_TESTS/cli/tiny_family.py" $f out/fam_$f --tokens out/fam_$f.u32 || fail "tiny_family.py $f"
  run cal_$f "$B/st-calibrate" out/fam_$f --data out/fam_$f.u32 --seq-len 16 -o out/fam_$f.st -q
  run q_${f}_static "$B/st-quant-w8a8" out/fam_$f --stats out/fam_$f.st -o out/q_${f}_static -q
  run q_${f}_dyn "$B/st-quant-w8a8" out/fam_$f --dynamic -o out/q_${f}_dyn -q
  run sh_${f}_static "$B/st-shard" out/q_${f}_static --tp 2 -o out/sh_${f}_static -q
  run ev_$f "$B/st-eval" out/fam_$f --quant out/sh_${f}_static --data out/fam_$f.u32 --seq-len 16 --json -q
done
run sp_chatglm "$B/st-sparsify" out/fam_chatglm --stats out/fam_chatglm.st --method wanda -o out/sp_chatglm -q

python3 "$ST_TESTS/cli/manifest_hash.py" out "$ST_FIXTURES" >"$TMP/manifest.txt"
expect_golden output_manifest.txt "$TMP/manifest.txt"
