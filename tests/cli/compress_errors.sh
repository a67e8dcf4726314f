# st-compress refuses bad input with one line and exit 2, leaving no output behind: an existing
# output without -f, a checkpoint of the wrong type for the direction, a missing directory,
# a corrupted W8A8SC stream (named down to the tensor), and a bfloat16 model unless --allow-bf16.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/compress_helpers.bash"

M=$ST_FIXTURES/llama-4m-fp16
make_stats "$M" "$TMP/stats.safetensors"
expect_exit 0 "$ST_BIN/st-sparsify" "$M" --stats "$TMP/stats.safetensors" -o "$TMP/s" -q
expect_exit 0 "$ST_BIN/st-compress" "$TMP/s" -o "$TMP/sc" -q
expect_stderr_empty

# Existing output: refused without -f, replaced with it.
expect_exit 2 "$ST_BIN/st-compress" "$TMP/s" -o "$TMP/sc"
expect_stderr_one_line
expect_stderr_contains "st-compress: error:"
expect_exit 0 "$ST_BIN/st-compress" "$TMP/s" -o "$TMP/sc" -f -q

# Wrong direction / wrong type.
expect_exit 2 "$ST_BIN/st-compress" "$M" -o "$TMP/x"
expect_stderr_one_line
expect_no_file "$TMP/x"
expect_exit 2 "$ST_BIN/st-compress" -d "$TMP/s" -o "$TMP/x"
expect_stderr_one_line
expect_stderr_contains "model_quant_type is 'W8A8S', expected 'W8A8SC'"
expect_no_file "$TMP/x"
expect_exit 2 "$ST_BIN/st-compress" "$TMP/sc" -o "$TMP/x"
expect_stderr_contains "expected 'W8A8S'"
expect_exit 2 "$ST_BIN/st-compress" "$TMP/nonexistent" -o "$TMP/x"
expect_stderr_one_line
expect_stderr_contains "$TMP/nonexistent"
expect_exit 2 "$ST_BIN/st-compress" "$TMP/s" -o "$TMP/s" -f
expect_stderr_contains "output is the input"
expect_file "$TMP/s/quant_model_weight_w8a8s.safetensors"
expect_exit 2 "$ST_BIN/st-compress" "$TMP/s" -o "$TMP/y" --level 99
expect_no_file "$TMP/y"

# A flipped byte inside one compressed weight: -d names the tensor and the tile, and writes nothing.
cp -r "$TMP/sc" "$TMP/bad"
target=$(python3 - "$TMP/bad/part0-of-1/quant_model_weight_w8a8sc.safetensors" <<'EOF'
import json, struct, sys
path = sys.argv[1]
f = open(path, "r+b")
n = struct.unpack("<Q", f.read(8))[0]
h = json.loads(f.read(n))
name = "model.layers.1.mlp.down_proj.weight"
a, b = h[name]["data_offsets"]
pos = 8 + n + a + (b - a) // 2
f.seek(pos)
byte = f.read(1)[0]
f.seek(pos)
f.write(bytes([byte ^ 0x5A]))
print(name)
EOF
)
expect_exit 2 "$ST_BIN/st-compress" -d "$TMP/bad" -o "$TMP/bad-out"
expect_stderr_one_line
expect_stderr_contains "tensor '$target'"
expect_stderr_matches "w8a8sc tile [0-9]+"
expect_no_file "$TMP/bad-out"

# A truncated index.
cp -r "$TMP/sc" "$TMP/bad2"
python3 - "$TMP/bad2/part0-of-1/quant_model_weight_w8a8sc.safetensors" <<'EOF'
import json, struct, sys
path = sys.argv[1]
f = open(path, "r+b")
n = struct.unpack("<Q", f.read(8))[0]
h = json.loads(f.read(n))
a, b = h["model.layers.0.self_attn.q_proj.index"]["data_offsets"]
f.seek(8 + n + a + 3)        # entry 0, offset byte 3: tile 0 no longer starts at 0
f.write(b"\x01")
EOF
expect_exit 2 "$ST_BIN/st-compress" -d "$TMP/bad2" -o "$TMP/bad2-out"
expect_stderr_one_line
expect_stderr_contains "model.layers.0.self_attn.q_proj.weight"
expect_stderr_contains "index offset"
expect_no_file "$TMP/bad2-out"

# A bfloat16 model: MindIE's W8A8SC linear refuses it, so st-compress does unless --allow-bf16.
MB=$ST_FIXTURES/llama-4m-bf16
make_stats "$MB" "$TMP/bf16.st"
expect_exit 0 "$ST_BIN/st-sparsify" "$MB" --stats "$TMP/bf16.st" -o "$TMP/sb" -q
expect_exit 2 "$ST_BIN/st-compress" "$TMP/sb" -o "$TMP/scb"
expect_stderr_one_line
expect_stderr_contains "bfloat16 model: MindIE's W8A8SC linear does not take bf16"
expect_stderr_contains "--allow-bf16"
expect_no_file "$TMP/scb"
expect_exit 0 "$ST_BIN/st-compress" "$TMP/sb" -o "$TMP/scb" --allow-bf16 -q
expect_file "$TMP/scb/part0-of-1/quant_model_weight_w8a8sc.safetensors"
