#!/usr/bin/env bash
# Other model formats are recognised by their first bytes and named in one line (exit 2) instead
# of failing on a safetensors header length: GGUF, PyTorch (torch.save zip, legacy pickle), ONNX,
# NumPy and HDF5; as a path, as a stream on stdin, and as the weights of a directory with no
# safetensors. Every tool that reads a checkpoint says the same (here st-quant-w8a8).
source "$(dirname "$0")/lib.sh"
I=$ST_BIN/st-inspect

python3 - "$TMP" <<'PY'
import io, os, pickle, struct, sys, zipfile
d = sys.argv[1]
def put(name, data):
    open(os.path.join(d, name), "wb").write(data)
# GGUF v3: magic, version, tensor count, metadata count.
put("model.gguf", b"GGUF" + struct.pack("<IQQ", 3, 0, 0))
# torch.save's zip: the first member is ARCHIVE/data.pkl.
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    z.writestr("archive/data.pkl", pickle.dumps({"w": [1.0, 2.0]}, protocol=2))
    z.writestr("archive/version", "3\n")
put("pytorch_model.bin", buf.getvalue())
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    z.writestr("notes.txt", "hello")
put("other.zip", buf.getvalue())
# Legacy torch.save: pickles from byte 0.
put("legacy.pt", pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps({"w": 1}, protocol=2))
# ONNX ModelProto: ir_version 8, producer_name "pytorch", opset_import.
put("model.onnx", b"\x08\x08\x12\x07pytorch\x1a\x052.1.0" + b"\x42\x04\x0a\x00\x10\x11")
put("array.npy", b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }" + b" " * 48 + b"\n")
put("weights.h5", b"\x89HDF\r\n\x1a\n" + bytes(64))
PY

# refused FILE WHAT: exit 2, one line "st-inspect: error: 'FILE': this is WHAT, not safetensors: ...".
refused() {
  expect_exit 2 "$I" "$1"
  expect_stderr_one_line
  expect_stdout_empty
  expect_stderr_contains "st-inspect: error: '$1': this is $2, not safetensors: st-tools read safetensors checkpoints"
}
refused "$TMP/model.gguf" "a GGUF file (llama.cpp, version 3)"
refused "$TMP/pytorch_model.bin" "a PyTorch checkpoint (torch.save zip, e.g. pytorch_model.bin or .pt)"
refused "$TMP/other.zip" "a zip archive (torch.save writes PyTorch checkpoints as zips)"
refused "$TMP/legacy.pt" "a Python pickle (a legacy PyTorch checkpoint, e.g. pytorch_model.bin or .pt)"
refused "$TMP/model.onnx" "an ONNX model"
refused "$TMP/array.npy" "a NumPy array (.npy)"
refused "$TMP/weights.h5" "an HDF5 file (e.g. Keras .h5)"

note "on stdin"
expect_exit_in "$TMP/model.gguf" 2 "$I" -
expect_stderr_one_line
expect_stderr_contains "'<stdin>': this is a GGUF file (llama.cpp, version 3), not safetensors"
expect_exit_in "$TMP/pytorch_model.bin" 2 "$I" -
expect_stderr_contains "'<stdin>': this is a PyTorch checkpoint"

note "a directory holding PyTorch weights and no safetensors"
mkdir "$TMP/hf"
cp "$TMP/pytorch_model.bin" "$ST_FIXTURES/llama-4m-fp16/config.json" "$TMP/hf/"
expect_exit 2 "$I" "$TMP/hf"
expect_stderr_one_line
expect_stderr_contains "'$TMP/hf': no checkpoint here: expected model.safetensors"
expect_stderr_contains "; 'pytorch_model.bin' is a PyTorch checkpoint (torch.save zip, e.g. pytorch_model.bin or .pt): st-tools read safetensors"

note "other tools say the same; a real safetensors header is unaffected"
expect_exit 2 "$ST_BIN/st-quant-w8a8" "$TMP/model.gguf" --dynamic -o "$TMP/q"
expect_stderr_one_line
expect_stderr_contains "this is a GGUF file"
expect_no_file "$TMP/q"
expect_exit 2 "$ST_BIN/st-inspect" --diff "$ST_FIXTURES/llama-4m-fp16" "$TMP/model.onnx"
expect_stderr_contains "this is an ONNX model"
head -c 100 /dev/urandom >"$TMP/junk.bin"
printf '\xff\xff\xff\xff\xff\xff\xff\x7f' | dd of="$TMP/junk.bin" conv=notrunc status=none
expect_exit 2 "$I" "$TMP/junk.bin"
expect_stderr_contains "exceeds the 100,000,000-byte limit"
note "ok"
