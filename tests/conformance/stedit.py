"""Edits of an output for the mutation tests: load a unit's tensors, change them, write them back the
way HF's safetensors writer lays them out (safetensors/src/tensor.rs prepare: descending dtype order,
then name; header padded with spaces to a multiple of 8)."""
import json
import os
import struct

from stfiles import WeightFile

# safetensors Dtype declaration order (derive(Ord)); prepare() sorts by it, descending.
DTYPE_ORDER = ["BOOL", "F4", "F6_E2M3", "F6_E3M2", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ",
               "F8_E5M2FNUZ", "I16", "U16", "F16", "BF16", "I32", "U32", "F32", "C64", "F64", "I64", "U64"]


class Tensors:
    """A unit's one weight file as {name: [dtype, shape, bytes]} plus its __metadata__."""

    def __init__(self, path):
        wf = WeightFile(path)
        if wf.error:
            raise ValueError(f"{path}: {wf.error}")
        self.path, self.metadata, self.t = path, dict(wf.metadata), {}
        with open(path, "rb") as f:
            raw = f.read()
        for x in wf.tensors:
            self.t[x.name] = [x.dtype, list(x.shape), raw[wf.data_start + x.begin:wf.data_start + x.end]]

    def write(self, pad=True):
        order = sorted(self.t, key=lambda n: (-DTYPE_ORDER.index(self.t[n][0]), n))
        header, pos = ({"__metadata__": self.metadata} if self.metadata else {}), 0
        for n in order:
            dt, shape, data = self.t[n]
            header[n] = {"dtype": dt, "shape": shape, "data_offsets": [pos, pos + len(data)]}
            pos += len(data)
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * ((-len(text) % 8) if pad else (1 - len(text) % 2))
        with open(self.path, "wb") as f:
            f.write(struct.pack("<Q", len(text)) + text + b"".join(self.t[n][2] for n in order))

    def add(self, name, dtype, shape, values):
        fmt = {"F16": "e", "F32": "f", "I8": "b", "I32": "i", "I64": "q"}[dtype]
        self.t[name] = [dtype, shape, struct.pack(f"<{len(values)}{fmt}", *values)]


def weight_file(unit_dir):
    names = sorted(n for n in os.listdir(unit_dir) if n.endswith(".safetensors"))
    return os.path.join(unit_dir, names[0])


def edit_json(path, fn):
    with open(path) as f:
        obj = json.load(f)
    obj = fn(obj) or obj
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)


def edit_tensors(unit_dir, fn, pad=True):
    ts = Tensors(weight_file(unit_dir))
    fn(ts)
    ts.write(pad)

