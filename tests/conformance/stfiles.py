"""Reads what a loader sees of an st-tools output: safetensors headers, small tensor values,
the side files, and the units (a quantized directory or each part{i}-of-{n}/ folder)."""
import json
import os
import re
import struct

# Element sizes of the safetensors dtypes (safetensors/src/tensor.rs Dtype::bitsize / 8).
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1, "F8_E4M3FNUZ": 1,
               "F8_E5M2FNUZ": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4,
               "C64": 8, "F64": 8, "I64": 8, "U64": 8}
FLOAT_DTYPES = {"F16", "BF16", "F32", "F64"}
PART_RE = re.compile(r"^part(\d+)-of-(\d+)$")
WEIGHT_RE = re.compile(r"\.safetensors$")


class Tensor:
    def __init__(self, name, dtype, shape, begin, end, wfile):
        self.name, self.dtype, self.shape, self.begin, self.end, self.file = name, dtype, shape, begin, end, wfile

    @property
    def numel(self):
        n = 1
        for d in self.shape:
            n *= d
        return n

    def values(self, limit=1 << 20):
        """The tensor's values as Python numbers (None when too large or not numeric)."""
        if self.numel > limit or self.dtype not in DECODERS:
            return None
        with open(self.file.path, "rb") as f:
            f.seek(self.file.data_start + self.begin)
            raw = f.read(self.end - self.begin)
        return DECODERS[self.dtype](raw, self.numel)


def _bf16(raw, n):
    return list(struct.unpack(f"<{n}f", b"".join(b"\0\0" + raw[2 * i:2 * i + 2] for i in range(n))))


DECODERS = {"F16": lambda r, n: list(struct.unpack(f"<{n}e", r)), "BF16": _bf16,
            "F32": lambda r, n: list(struct.unpack(f"<{n}f", r)), "F64": lambda r, n: list(struct.unpack(f"<{n}d", r)),
            "I8": lambda r, n: list(struct.unpack(f"<{n}b", r)), "U8": lambda r, n: list(r),
            "I16": lambda r, n: list(struct.unpack(f"<{n}h", r)), "I32": lambda r, n: list(struct.unpack(f"<{n}i", r)),
            "I64": lambda r, n: list(struct.unpack(f"<{n}q", r))}


class WeightFile:
    """One .safetensors file: its tensors, or the reason it does not parse (error)."""

    def __init__(self, path):
        self.path, self.tensors, self.metadata, self.error = path, [], {}, None
        self.header_bytes = self.data_start = 0
        try:
            self._parse()
        except (OSError, ValueError, KeyError, TypeError, struct.error) as e:
            self.error = str(e) or type(e).__name__

    def _parse(self):
        # The checks safetensors' safe_open makes (safetensors/src/tensor.rs read_metadata, Metadata::validate).
        size = os.path.getsize(self.path)
        with open(self.path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise ValueError("shorter than the 8-byte header length")
            n = struct.unpack("<Q", head)[0]
            if n > 100_000_000 or 8 + n > size:
                raise ValueError(f"header length {n} runs past the file")
            header = json.loads(f.read(n).decode("utf-8"))
        self.header_bytes, self.data_start = n, 8 + n
        self.metadata = header.pop("__metadata__", {}) or {}
        for name, e in header.items():
            if e["dtype"] not in DTYPE_BYTES:
                raise ValueError(f"unknown dtype {e['dtype']} for {name}")
            b, end = e["data_offsets"]
            self.tensors.append(Tensor(name, e["dtype"], list(e["shape"]), b, end, self))
        self.tensors.sort(key=lambda t: (t.begin, t.end))
        pos = 0
        for t in self.tensors:
            if t.begin != pos or t.end < t.begin:
                raise ValueError(f"{t.name}: data_offsets {t.begin}..{t.end} leave a hole or overlap at {pos}")
            if t.numel * DTYPE_BYTES[t.dtype] != t.end - t.begin:
                raise ValueError(f"{t.name}: {t.end - t.begin} bytes for {t.dtype} {t.shape}")
            pos = t.end
        if self.data_start + pos != size:
            raise ValueError(f"buffer ends at {self.data_start + pos}, file has {size} bytes")


def read_json(path):
    """(object, error): the parsed JSON file, or None and why not."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f), None
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as e:
        return None, str(e)


class Unit:
    """A directory a loader reads weights from: its weight files, description and config."""

    def __init__(self, path):
        self.path = path
        names = sorted(os.listdir(path))
        self.files = [WeightFile(os.path.join(path, n)) for n in names if WEIGHT_RE.search(n)]
        self.file_names = names
        self.tensors, self.duplicates = {}, []
        for wf in self.files:
            for t in wf.tensors:
                if t.name in self.tensors:
                    self.duplicates.append(t)
                else:
                    self.tensors[t.name] = t
        self.description_name = next((n for n in names if n == "quant_model_description.json"),
                                     next((n for n in names if re.fullmatch(r"quant_model_description_\w+\.json", n)),
                                          None))
        self.description, self.description_error = (read_json(os.path.join(path, self.description_name))
                                                    if self.description_name else (None, None))
        self.config, self.config_error = read_json(os.path.join(path, "config.json"))


class Output:
    """An st-tools output: a quantized directory, or a directory of part{i}-of-{n}/ folders."""

    def __init__(self, root):
        self.root = root
        entries = sorted(os.listdir(root))
        parts = [(int(m.group(1)), int(m.group(2)), e) for e in entries
                 if (m := PART_RE.match(e)) and os.path.isdir(os.path.join(root, e))]
        self.parts = sorted(parts)
        self.kind = "parts" if parts else "quantized"
        self.root_files = [e for e in entries if os.path.isfile(os.path.join(root, e))]
        self.root_config, self.root_config_error = read_json(os.path.join(root, "config.json"))
        self.units = [Unit(os.path.join(root, p[2])) for p in self.parts] if parts else [Unit(root)]
        types = {u.description.get("model_quant_type") for u in self.units if isinstance(u.description, dict)}
        self.is_sc = "W8A8SC" in types

    def world(self):
        return self.parts[0][1] if self.parts else 1
