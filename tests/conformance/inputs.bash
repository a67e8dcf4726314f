# Inputs of the conformance tests (source it after tests/cli/lib.sh): the fixture models with the side
# files a published checkpoint carries, a tiny Qwen2-style model, and their calibration statistics.

# with_side_files SRC DST: SRC's files (linked) plus the non-weight files a published checkpoint
# carries; DeepSeek also gets auto_map code files named by its config.json.
with_side_files() {
  local src=$1 dst=$2 f
  mkdir -p "$dst"
  for f in "$src"/*; do [[ $(basename "$f") == config.json ]] || ln -s "$f" "$dst/"; done
  printf 'Apache License 2.0 (test copy)\n' >"$dst/LICENSE"
  printf '# %s\nA test model.\n' "$(basename "$src")" >"$dst/README.md"
  printf '{"chat_template": "{{ messages }}"}\n' >"$dst/chat_template.json"
  printf '{"processor_class": "none"}\n' >"$dst/preprocessor_config.json"
  python3 - "$src/config.json" "$dst" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
if cfg["model_type"].startswith("deepseek"):
    cfg["auto_map"] = {"AutoConfig": "configuration_deepseek.DeepseekV3Config",
                       "AutoModelForCausalLM": "modeling_deepseek.DeepseekV3ForCausalLM"}
    for f in ("configuration_deepseek.py", "modeling_deepseek.py"):
        open(f"{sys.argv[2]}/{f}", "w").write(f"# {f}: remote code a trust_remote_code loader imports\n")
json.dump(cfg, open(f"{sys.argv[2]}/config.json", "w"), indent=2)
PY
}

# make_inputs DIR: DIR/in_llama, in_bf16, in_ds, in_qwen2 and DIR/{llama,bf16,ds,q}.st.
make_inputs() {
  local w=$1 m
  with_side_files "$ST_FIXTURES/llama-4m-fp16" "$w/in_llama"
  with_side_files "$ST_FIXTURES/llama-4m-bf16" "$w/in_bf16"
  with_side_files "$ST_FIXTURES/deepseekv3-mla-6m-fp16" "$w/in_ds"
  python3 "$ST_TESTS/cli/tiny_model.py" "$w/tiny" --model-type qwen2 --bias --stats "$w/q.st"
  cp "$ST_FIXTURES"/llama-4m-fp16/tokenizer*.json "$w/tiny/"  # present, not matched to the 32-token vocabulary
  with_side_files "$w/tiny" "$w/in_qwen2"
  for m in llama bf16 ds; do
    run_cmd "$ST_BIN/st-calibrate" "$w/in_$m" --data "$ST_FIXTURES/data/calib_ids.jsonl" --samples 4 --seq-len 64 \
      -o "$w/$m.st" -q </dev/null
    [[ $LAST_RC == 0 ]] || fail "calibrate $m: exit $LAST_RC"
  done
}
