# Plants faults in safetensors checkpoints for the st-verify tests (python3 stdlib only).
#   flip FILE TENSOR [BYTE]          xor one data byte of TENSOR with 0x5a (default byte 0)
#   add_i32 FILE TENSOR INDEX DELTA  add DELTA to element INDEX of an I32 tensor
#   deq_to_f32 FILE TENSOR           rewrite an I64-packed deq_scale as F32 (the bf16 layout)
#   undescribe DIR TENSOR            remove TENSOR from DIR/quant_model_description.json
#   meta_get FILE KEY                print a __metadata__ value
#   meta_set FILE KEY VALUE [OUT]    set a __metadata__ value (drops "st.xxh3" and FILE.xxh3), in place or to OUT
#   recipe_at FILE INDEX AT          set the row offset of st.shard.recipe entry INDEX (a part file)
#   recipe_zst FILE                  store st.shard.recipe as st.shard.recipe.zst (st-shard's form for big models)
#   recipe_bomb FILE SIZE            replace st.shard.recipe by a tiny zstd frame declaring SIZE bytes
#   fill FILE TENSOR VALUE           set every element of an F32 / F64 tensor to VALUE (nan, -inf, 1e-40, ...)
#   strip_checksums FILE             drop the per-tensor hashes ("st.xxh3") and FILE.xxh3
#   shorten FILE TENSOR BYTES        drop the last BYTES of a 1-D tensor (and the checksums)
#   stats CALIBSTATS_JSON OUT        an st-calibrate statistics file from reference/calibstats_*.json
#                                    (min, max, absmax as HF measured them; sumsq = absmax^2)
import base64
import json
import os
import struct
import subprocess
import sys


def read(path):
    with open(path, 'rb') as f:
        raw = f.read()
    n = struct.unpack('<Q', raw[:8])[0]
    return json.loads(raw[8:8 + n]), raw[8 + n:], 8 + n


def write(path, header, tensors):
    # tensors: list of (name, dtype, shape, bytes) in order; metadata from header
    out = {}
    if '__metadata__' in header:
        out['__metadata__'] = header['__metadata__']
    off = 0
    for name, dt, shape, b in tensors:
        out[name] = {'dtype': dt, 'shape': shape, 'data_offsets': [off, off + len(b)]}
        off += len(b)
    h = json.dumps(out, separators=(',', ':')).encode()
    h += b' ' * ((8 - (8 + len(h)) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(h)))
        f.write(h)
        for t in tensors:
            f.write(t[3])


def tensors_of(header, buf):
    items = [(k, v) for k, v in header.items() if k != '__metadata__']
    items.sort(key=lambda kv: kv[1]['data_offsets'][0])
    return [(k, v['dtype'], v['shape'], buf[v['data_offsets'][0]:v['data_offsets'][1]]) for k, v in items]


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == 'flip':
        path, name = args[0], args[1]
        byte = int(args[2]) if len(args) > 2 else 0
        header, _, start = read(path)
        at = start + header[name]['data_offsets'][0] + byte
        with open(path, 'r+b') as f:
            f.seek(at)
            b = f.read(1)[0]
            f.seek(at)
            f.write(bytes([b ^ 0x5a]))
    elif cmd == 'add_i32':
        path, name, index, delta = args[0], args[1], int(args[2]), int(args[3])
        header, _, start = read(path)
        at = start + header[name]['data_offsets'][0] + 4 * index
        with open(path, 'r+b') as f:
            f.seek(at)
            v = struct.unpack('<i', f.read(4))[0]
            f.seek(at)
            f.write(struct.pack('<i', v + delta))
    elif cmd == 'deq_to_f32':
        path, name = args[0], args[1]
        header, buf, _ = read(path)
        out = []
        for n, dt, shape, b in tensors_of(header, buf):
            if n == name:
                vals = struct.unpack('<%dq' % (len(b) // 8), b)
                b = b''.join(struct.pack('<I', v & 0xffffffff) for v in vals)
                dt = 'F32'
            out.append((n, dt, shape, b))
        write(path, header, out)
    elif cmd == 'undescribe':
        path = args[0] + '/quant_model_description.json'
        with open(path) as f:
            d = json.load(f)
        del d[args[1]]
        with open(path, 'w') as f:
            json.dump(d, f, indent=2)
    elif cmd == 'meta_get':
        header, _, _ = read(args[0])
        print(header.get('__metadata__', {}).get(args[1], ''))
    elif cmd == 'meta_set':
        header, buf, _ = read(args[0])
        md = header.setdefault('__metadata__', {})
        md.pop('st.xxh3', None)
        md[args[1]] = args[2]
        out = args[3] if len(args) > 3 else args[0]
        write(out, header, tensors_of(header, buf))
        if out == args[0] and os.path.exists(out + '.xxh3'):
            os.remove(out + '.xxh3')
    elif cmd in ('recipe_at', 'recipe_zst', 'recipe_bomb'):
        header, buf, _ = read(args[0])
        md = header['__metadata__']
        md.pop('st.xxh3', None)
        if cmd == 'recipe_at':
            recipe = json.loads(md['st.shard.recipe'])
            recipe[int(args[1])][8] = int(args[2])
            md['st.shard.recipe'] = json.dumps(recipe, separators=(',', ':'))
        elif cmd == 'recipe_zst':
            text = md.pop('st.shard.recipe').encode()  # a file, so the frame records its size
            with open(args[0] + '.recipe', 'wb') as f:
                f.write(text)
            z = subprocess.run(['zstd', '-3', '-q', '-c', args[0] + '.recipe'], stdout=subprocess.PIPE, check=True).stdout
            os.remove(args[0] + '.recipe')
            md['st.shard.recipe.zst'] = base64.b64encode(z).decode()
        else:
            # Frame header: magic, descriptor 0xE0 (single segment, 8-byte content size), the size;
            # then one last RLE block of 1000 zero bytes. Valid to the frame parser, a bomb if believed.
            del md['st.shard.recipe']
            frame = struct.pack('<I', 0xFD2FB528) + bytes([0xE0]) + struct.pack('<Q', int(args[1]))
            frame += struct.pack('<I', 1 | (1 << 1) | (1000 << 3))[:3] + b'\0'
            md['st.shard.recipe.zst'] = base64.b64encode(frame).decode()
        write(args[0], header, tensors_of(header, buf))
        if os.path.exists(args[0] + '.xxh3'):
            os.remove(args[0] + '.xxh3')
    elif cmd == 'fill':
        path, name, value = args[0], args[1], float(args[2])
        header, _, start = read(path)
        t = header[name]
        fmt = {'F32': '<f', 'F64': '<d'}[t['dtype']]
        n = (t['data_offsets'][1] - t['data_offsets'][0]) // struct.calcsize(fmt)
        with open(path, 'r+b') as f:
            f.seek(start + t['data_offsets'][0])
            f.write(struct.pack(fmt, value) * n)
    elif cmd == 'strip_checksums':
        header, buf, _ = read(args[0])
        header.get('__metadata__', {}).pop('st.xxh3', None)
        write(args[0], header, tensors_of(header, buf))
        if os.path.exists(args[0] + '.xxh3'):
            os.remove(args[0] + '.xxh3')
    elif cmd == 'shorten':
        path, name, cut = args[0], args[1], int(args[2])
        header, buf, _ = read(path)
        header.get('__metadata__', {}).pop('st.xxh3', None)
        out = []
        for n, dt, shape, b in tensors_of(header, buf):
            if n == name:
                b = b[:len(b) - cut]
                shape = [len(b)]
            out.append((n, dt, shape, b))
        write(path, header, out)
        if os.path.exists(path + '.xxh3'):
            os.remove(path + '.xxh3')
    elif cmd == 'stats':
        d = json.load(open(args[0]))
        out = []
        for prefix, v in d.items():
            if prefix.startswith('_') or not isinstance(v, dict):
                continue
            a = v['absmax_per_channel']
            k = len(a)
            out.append((prefix + '.input_min', 'F32', [1], struct.pack('<f', v['min'])))
            out.append((prefix + '.input_max', 'F32', [1], struct.pack('<f', v['max'])))
            out.append((prefix + '.input_absmax', 'F32', [k], struct.pack('<%df' % k, *a)))
            out.append((prefix + '.input_sumsq', 'F64', [k], struct.pack('<%dd' % k, *[x * x for x in a])))
            out.append((prefix + '.tokens', 'I64', [1], struct.pack('<q', 32768)))
        write(args[1], {'__metadata__': {'st.stats.version': '1', 'st.stats.samples': '64',
                                         'st.stats.seq_len': '512', 'st.stats.model': 'reference'}}, out)
    else:
        sys.exit('unknown command ' + cmd)


main()
