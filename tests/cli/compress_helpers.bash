# Helpers for the st-compress / st-sparsify command-level tests (sourced after lib.sh; not a
# test itself: the .bash suffix keeps it out of the tests/cli/*.sh glob).
#
# make_stats MODEL OUT: activation statistics for MODEL. With st-calibrate built: 4 calibration
# sequences of the fixture data. Without it: a statistics file in the stats.hpp format with
# fixed ranges and seeded per-channel sums of squares, enough for tests of the file formats
# (not for accuracy).
make_stats() {
  local model=$1 out=$2
  if [[ -x $ST_BIN/st-calibrate ]]; then
    "$ST_BIN/st-calibrate" "$model" --data "$ST_FIXTURES/data/calib_ids.jsonl" --samples 4 -o "$out" 2>/dev/null
    return
  fi
  python3 - "$model" "$out" <<'EOF'
import json, random, struct, sys
model, out = sys.argv[1], sys.argv[2]
f = open(model + "/model.safetensors", "rb")
n = struct.unpack("<Q", f.read(8))[0]
h = json.loads(f.read(n))
rng = random.Random(7)
t = {}
for name, e in h.items():
    if name == "__metadata__" or not name.endswith(".weight") or len(e["shape"]) != 2: continue
    if ".layers." not in name or name.endswith("mlp.gate.weight"): continue
    p, k = name[:-7], e["shape"][1]
    t[p + ".input_min"] = ("F32", [1], struct.pack("<f", -3.0))
    t[p + ".input_max"] = ("F32", [1], struct.pack("<f", 3.5))
    t[p + ".input_absmax"] = ("F32", [k], struct.pack("<%df" % k, *[rng.uniform(0.5, 4) for _ in range(k)]))
    t[p + ".input_sumsq"] = ("F64", [k], struct.pack("<%dd" % k, *[rng.uniform(10, 1000) for _ in range(k)]))
    t[p + ".tokens"] = ("I64", [1], struct.pack("<q", 1000))
hdr, off, blob = {"__metadata__": {"st.stats.version": "1"}}, 0, b""
for name, (dt, shape, data) in t.items():
    hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}
    off += len(data)
    blob += data
hj = json.dumps(hdr).encode()
hj += b" " * ((8 - (8 + len(hj)) % 8) % 8)
open(out, "wb").write(struct.pack("<Q", len(hj)) + hj + blob)
EOF
}

# check_w8a8sc_part DIR: every W8A8SC weight of DIR's weight file has an index of
# ceil(k/256)*ceil(n/128)*8 bytes and info [8, 8, k, n, 1] where [n, k] is the weight's shape in
# the W8A8S file of REF_DIR (second argument); prints "weights compressed raw".
check_w8a8sc_part() {
  python3 - "$1" "$2" <<'EOF'
import json, math, struct, sys
def load(path):
    f = open(path, "rb")
    n = struct.unpack("<Q", f.read(8))[0]
    h = json.loads(f.read(n))
    return f, h, 8 + n
sc_dir, s_dir = sys.argv[1], sys.argv[2]
f, h, base = load(sc_dir + "/quant_model_weight_w8a8sc.safetensors")
_, ref, _ = load(s_dir + "/quant_model_weight_w8a8s.safetensors")
desc = json.load(open(sc_dir + "/quant_model_description.json"))
assert desc["model_quant_type"] == "W8A8SC", desc["model_quant_type"]
count = comp = raw = 0
for name, typ in desc.items():
    if typ != "W8A8SC" or not name.endswith(".weight"): continue
    p = name[:-7]
    n, k = ref[name]["shape"]
    w, ix, info = h[name], h[p + ".index"], h[p + ".info"]
    assert w["dtype"] == "I8" and len(w["shape"]) == 1, name
    assert ix["dtype"] == "I8" and ix["shape"] == [math.ceil(k / 256) * math.ceil(n / 128) * 8], (name, ix["shape"], n, k)
    assert info["dtype"] == "I64" and info["shape"] == [5], name
    f.seek(base + info["data_offsets"][0])
    vals = list(struct.unpack("<5q", f.read(40)))
    assert vals == [8, 8, k, n, 1], (name, vals)
    assert desc[p + ".index"] == "W8A8SC" and desc[p + ".info"] == "W8A8SC", p
    for other in ("input_scale", "input_offset", "deq_scale", "quant_bias"):
        assert desc[p + "." + other] == "W8A8S", (p, other)
    count += 1
    raw += n * k
    comp += (w["data_offsets"][1] - w["data_offsets"][0]) + (ix["data_offsets"][1] - ix["data_offsets"][0])
for name, typ in desc.items():
    if name in ("model_quant_type",): continue
    assert name in h, "described but not stored: " + name
assert count > 0, "no W8A8SC weights"
print(count, comp, raw)
EOF
}

# expect_same_dir A B: the same file names, each byte-identical.
expect_same_dir() {
  diff <(cd "$1" && find . -type f | sort) <(cd "$2" && find . -type f | sort) >/dev/null ||
    fail "directories hold different files: $1 $2"
  local f
  while IFS= read -r f; do expect_same "$1/$f" "$2/$f"; done < <(cd "$1" && find . -type f)
}
