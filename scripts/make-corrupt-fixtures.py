#!/usr/bin/env python3
"""Writes tests/fixtures/corrupt/: one small malformed safetensors file per validation rule,
plus README (one line per file: the rule it breaks, the message fragment, what it breaks).
Python stdlib only; deterministic output.

    scripts/make-corrupt-fixtures.py [OUT_DIR]     (default: tests/fixtures/corrupt)
"""
import os
import struct
import sys


def st(header, buffer=b"", length=None):
    """A safetensors file: 8-byte little-endian header length, header bytes, buffer."""
    if isinstance(header, str):
        header = header.encode("utf-8")
    n = len(header) if length is None else length
    return struct.pack("<Q", n) + header + buffer


def entry(name, dtype="F32", shape="[2]", offsets="[0,8]"):
    return '"%s":{"dtype":"%s","shape":%s,"data_offsets":%s}' % (name, dtype, shape, offsets)


def obj(*entries):
    return "{" + ",".join(entries) + "}"


VALID = obj(entry("a"))  # F32 [2] at [0, 8)
BUF8 = bytes(range(8))

DEEP = 10000  # nesting levels: far beyond the 3 the format uses

# (file name, the rule it breaks as libst's Fault, a fragment of the error message, what it breaks, contents)
CASES = [
    ("empty.safetensors", "too_short", "too small for a safetensors header",
     "empty file: no 8-byte header length",
     b""),
    ("too_short.safetensors", "too_short", "too small for a safetensors header (5 bytes)",
     "fewer than 8 bytes (5): no header length",
     b"\x10\x00\x00\x00\x00"),
    ("header_too_large.safetensors", "header_too_large", "exceeds the 100,000,000-byte limit",
     "header length 100,000,001 exceeds the 100,000,000-byte limit",
     st(VALID, BUF8, length=100_000_001)),
    ("header_length_u64_max.safetensors", "header_too_large", "exceeds the 100,000,000-byte limit",
     "header length 2^64-1: limit check must not overflow 8 + N",
     st(VALID, BUF8, length=2**64 - 1)),
    ("header_past_eof.safetensors", "header_past_end", "runs past the end of the file",
     "header length 4096 runs past the end of a 80-byte file",
     st(VALID, BUF8, length=4096)),
    ("non_utf8.safetensors", "invalid_utf8", "not valid UTF-8 (byte 0xff",
     "header has an invalid UTF-8 byte (0xff) inside a tensor name",
     st(b'{"a\xff":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', BUF8)),
    ("invalid_json.safetensors", "invalid_json", "header is not valid JSON",
     "header JSON is cut off mid-object",
     st('{"a":{"dtype":"F32","shape":[2],', BUF8)),
    ("trailing_garbage.safetensors", "invalid_json", "expected end of input",
     "non-space bytes after the header's JSON object",
     st(VALID + "xyz", BUF8)),
    ("not_object.safetensors", "invalid_json", "header is not a JSON object",
     "header is a JSON array, not an object",
     st("[1,2,3]", BUF8)),
    ("deep_nesting.safetensors", "too_deep", "nests deeper than the format allows",
     "shape nested %d arrays deep (bounded nesting)" % DEEP,
     st('{"a":{"dtype":"F32","shape":' + "[" * DEEP + "]" * DEEP + ',"data_offsets":[0,8]}}', BUF8)),
    ("entry_not_object.safetensors", "invalid_entry", "entry is not an object",
     "a tensor entry is a number, not an object",
     st('{"a":5}', BUF8)),
    ("missing_dtype.safetensors", "invalid_entry", "missing string field 'dtype'",
     "a tensor entry has no dtype",
     st('{"a":{"shape":[2],"data_offsets":[0,8]}}', BUF8)),
    ("unknown_dtype.safetensors", "unknown_dtype", "unknown dtype 'F17'",
     "dtype F17 is not one of the 22 known dtypes",
     st(obj(entry("a", dtype="F17")), BUF8)),
    ("negative_dim.safetensors", "invalid_entry", "shape must hold non-negative integers",
     "shape holds a negative dimension (-2)",
     st(obj(entry("a", shape="[-2]")), BUF8)),
    ("non_integer_dim.safetensors", "invalid_entry", "shape must hold non-negative integers",
     "shape holds a non-integer dimension (2.5)",
     st(obj(entry("a", shape="[2.5]")), BUF8)),
    ("shape_overflow.safetensors", "size_overflow", "element count overflows",
     "shape [2^32, 2^32, 2]: element count overflows 64 bits",
     st(obj(entry("a", shape="[4294967296,4294967296,2]")), BUF8)),
    ("byte_length_mismatch.safetensors", "length_mismatch", "span 8 bytes but F32 3 elements need 12",
     "F32 [3] needs 12 bytes but data_offsets span 8",
     st(obj(entry("a", shape="[3]")), BUF8)),
    ("begin_after_end.safetensors", "invalid_offset", "begin is after end",
     "data_offsets [8, 0]: begin after end",
     st(obj(entry("a", offsets="[8,0]")), BUF8)),
    ("offsets_not_zero.safetensors", "invalid_offset", "data_offsets start at 8, not 0",
     "the only tensor starts at byte 8, not 0 (8 bytes before it unused)",
     st(obj(entry("a", offsets="[8,16]")), BUF8 + BUF8)),
    ("hole.safetensors", "invalid_offset", "hole in the buffer",
     "bytes 8..16 between two tensors belong to none",
     st(obj(entry("a"), entry("b", offsets="[16,24]")), BUF8 * 3)),
    ("overlap.safetensors", "invalid_offset", "overlap the previous tensor",
     "second tensor [4, 12) overlaps the first [0, 8)",
     st(obj(entry("a"), entry("b", offsets="[4,12]")), BUF8 + BUF8[:4])),
    ("trailing_bytes.safetensors", "incomplete_buffer", "4 trailing bytes after the last tensor",
     "4 bytes in the buffer after the last tensor's end",
     st(VALID, BUF8 + b"\x00" * 4)),
    ("truncated_buffer.safetensors", "incomplete_buffer", "file is truncated",
     "F32 [4] needs buffer bytes [0, 16) but the file holds 8",
     st(obj(entry("a", shape="[4]", offsets="[0,16]")), BUF8)),
    ("duplicate_names.safetensors", "duplicate_key", "duplicate tensor name 'a'",
     "the same tensor name appears twice in the header",
     st(obj(entry("a"), entry("a", offsets="[8,16]")), BUF8 * 2)),
    ("metadata_not_string_map.safetensors", "invalid_metadata", "__metadata__ value of 'format' is not a string",
     "__metadata__ maps a key to a number, not a string",
     st('{"__metadata__":{"format":1},' + entry("a") + "}", BUF8)),
    ("metadata_not_object.safetensors", "invalid_metadata", "__metadata__ is not an object",
     "__metadata__ is a string, not an object",
     st('{"__metadata__":"pt",' + entry("a") + "}", BUF8)),
    ("offsets_arity.safetensors", "invalid_entry", "must be an array of two integers",
     "data_offsets holds three integers instead of two",
     st(obj(entry("a", offsets="[0,4,8]")), BUF8)),
    ("negative_offset.safetensors", "invalid_offset", "data_offsets must hold non-negative integers",
     "data_offsets holds a negative integer",
     st(obj(entry("a", offsets="[-8,0]")), BUF8)),
    ("subbyte_partial.safetensors", "length_mismatch", "sub-byte dtype does not fill whole bytes",
     "F4 [3] is 12 bits: sub-byte dtypes must fill whole bytes",
     st(obj(entry("a", dtype="F4", shape="[3]", offsets="[0,2]")), BUF8[:2])),
]


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "tests", "fixtures", "corrupt")
    os.makedirs(out, exist_ok=True)
    names = [c[0] for c in CASES]
    assert len(names) == len(set(names)), "duplicate fixture names"
    for name, _, _, _, data in CASES:
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    with open(os.path.join(out, "README"), "w") as f:
        f.write("Malformed safetensors files, one per validation rule; every one must be refused\n"
                "(exit 2, one-line error naming the file and the rule), never crash or hang.\n"
                "Generated by scripts/make-corrupt-fixtures.py; do not edit by hand.\n"
                "Format: FILE: FAULT: \"MESSAGE FRAGMENT\": what it breaks\n"
                "(FAULT names libst's st::Fault; tests/unit/malformed_test.cpp asserts it, and both that test\n"
                "and tests/cli/inspect_corrupt.sh assert the message fragment.)\n\n")
        for name, fault, fragment, what, _ in CASES:
            f.write('%s: %s: "%s": %s\n' % (name, fault, fragment, what))
    print("wrote %d files to %s" % (len(CASES), out))


if __name__ == "__main__":
    main()
