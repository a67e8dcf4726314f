// Tensor listings, streamed multi-threaded statistics and checkpoint / description diffs.
#include "libst/inspect/inspect.hpp"
#include "libst/inspect/internal.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <unordered_map>

#include "libst/core/parallel.hpp"
#include "libst/core/paths.hpp"

namespace st {
namespace {

constexpr uint64_t kChunk = uint64_t{1} << 16;  // elements per chunk: the unit of parallel work
constexpr size_t kBlock = 4096;                 // elements converted at a time
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// fn(c) for every chunk index c in [0, n), in parallel; each chunk has its own result, merged in
// chunk order, so the totals do not depend on the thread count.
void for_each_chunk(uint64_t n, const std::function<void(uint64_t)>& fn) {
  parallel_for(static_cast<int64_t>(n), [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) fn(static_cast<uint64_t>(c));
  });
}

template <class T, class Conv>
void load_as(const uint8_t* p, size_t n, double* out, Conv conv) {
  for (size_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, p + i * sizeof(T), sizeof(T));
    out[i] = static_cast<double>(conv(v));
  }
}

template <class T>
void load_plain(const uint8_t* p, size_t n, double* out) {
  load_as<T>(p, n, out, [](T v) { return v; });
}

// All 65,536 F16 values as float: a table lookup beats the bit manipulation per element.
const float* f16_table() {
  static const std::vector<float> table = [] {
    std::vector<float> t(65536);
    for (uint32_t h = 0; h < 65536; ++h) t[h] = f16_to_f32(static_cast<uint16_t>(h));
    return t;
  }();
  return table.data();
}

// Converts n elements of a stats-supported dtype to double.
void load_doubles(DType t, const uint8_t* p, size_t n, double* out) {
  switch (t) {
    case DType::BOOL: load_as<uint8_t>(p, n, out, [](uint8_t v) { return v ? 1 : 0; }); break;
    case DType::U8: load_plain<uint8_t>(p, n, out); break;
    case DType::I8: load_plain<int8_t>(p, n, out); break;
    case DType::I16: load_plain<int16_t>(p, n, out); break;
    case DType::U16: load_plain<uint16_t>(p, n, out); break;
    case DType::I32: load_plain<int32_t>(p, n, out); break;
    case DType::U32: load_plain<uint32_t>(p, n, out); break;
    case DType::I64: load_plain<int64_t>(p, n, out); break;
    case DType::U64: load_plain<uint64_t>(p, n, out); break;
    case DType::F16: {
      const float* lut = f16_table();
      load_as<uint16_t>(p, n, out, [lut](uint16_t h) { return lut[h]; });
      break;
    }
    case DType::BF16: load_as<uint16_t>(p, n, out, bf16_to_f32); break;
    case DType::F32: load_plain<float>(p, n, out); break;
    case DType::F64: load_plain<double>(p, n, out); break;
    default: std::fill(out, out + n, kNaN); break;
  }
}

// Running moments over finite values, mergeable in a fixed order (Chan et al.).
struct Acc {
  uint64_t count = 0, finite = 0, zeros = 0, nans = 0, infs = 0;
  double min = std::numeric_limits<double>::infinity(), max = -std::numeric_limits<double>::infinity();
  double absmax = 0, mean = 0, m2 = 0;

  void merge(const Acc& o) {
    count += o.count;
    zeros += o.zeros;
    nans += o.nans;
    infs += o.infs;
    if (o.finite == 0) return;
    min = std::min(min, o.min);
    max = std::max(max, o.max);
    absmax = std::max(absmax, o.absmax);
    const double n = static_cast<double>(finite + o.finite);
    const double delta = o.mean - mean;
    mean += delta * static_cast<double>(o.finite) / n;
    m2 += o.m2 + delta * delta * static_cast<double>(finite) * static_cast<double>(o.finite) / n;
    finite += o.finite;
  }
};

Acc block_acc(const double* x, size_t n) {
  Acc a;
  a.count = n;
  double sum = 0;
  for (size_t i = 0; i < n; ++i) {
    const double v = x[i];
    if (std::isnan(v)) {
      ++a.nans;
      continue;
    }
    if (std::isinf(v)) {
      ++a.infs;
      continue;
    }
    if (v == 0) ++a.zeros;
    ++a.finite;
    sum += v;
    a.min = std::min(a.min, v);
    a.max = std::max(a.max, v);
    a.absmax = std::max(a.absmax, std::fabs(v));
  }
  if (a.finite == 0) return a;
  a.mean = sum / static_cast<double>(a.finite);
  for (size_t i = 0; i < n; ++i)
    if (std::isfinite(x[i])) a.m2 += (x[i] - a.mean) * (x[i] - a.mean);
  return a;
}

Acc chunk_acc(DType t, const uint8_t* data, uint64_t from, uint64_t to) {
  const size_t esize = dtype_bits(t) / 8;
  double buf[kBlock];
  Acc acc;
  for (uint64_t i = from; i < to; i += kBlock) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kBlock, to - i));
    load_doubles(t, data + i * esize, n, buf);
    acc.merge(block_acc(buf, n));
  }
  return acc;
}

uint64_t chunk_count(uint64_t numel) { return (numel + kChunk - 1) / kChunk; }

}  // namespace

bool keep(const std::string& glob, const std::string& name) { return glob.empty() || glob_match(glob, name); }

bool stats_supported(DType t) {
  switch (t) {
    case DType::BOOL: case DType::U8: case DType::I8: case DType::I16: case DType::U16: case DType::I32:
    case DType::U32: case DType::I64: case DType::U64: case DType::F16: case DType::BF16: case DType::F32:
    case DType::F64:
      return true;
    default:
      return false;
  }
}

Result<TensorStats> compute_stats(DType t, const uint8_t* data, uint64_t numel) {
  if (!stats_supported(t)) return make_error(Errc::unsupported, std::string("no statistics for dtype ") + dtype_name(t));
  const uint64_t chunks = chunk_count(numel);
  std::vector<Acc> parts(chunks);
  for_each_chunk(chunks, [&](uint64_t c) {
    parts[c] = chunk_acc(t, data, c * kChunk, std::min(numel, (c + 1) * kChunk));
  });
  Acc total;
  for (const auto& p : parts) total.merge(p);
  TensorStats s;
  s.count = total.count;
  s.finite = total.finite;
  s.zeros = total.zeros;
  s.nans = total.nans;
  s.infs = total.infs;
  if (total.finite == 0) {
    s.min = s.max = s.mean = s.std = s.absmax = kNaN;
  } else {
    s.min = total.min;
    s.max = total.max;
    s.mean = total.mean;
    s.std = std::sqrt(total.m2 / static_cast<double>(total.finite));
    s.absmax = total.absmax;
  }
  return s;
}

namespace {

void add_count(CountBytes& into, const CountBytes& c) {
  into.tensors += c.tensors;
  into.params += c.params;
  into.bytes += c.bytes;
}

}  // namespace

void Summary::add(const TensorRow& row) {
  uint64_t numel = 1;
  for (int64_t d : row.shape) numel *= static_cast<uint64_t>(d);
  const CountBytes one{1, numel, row.bytes};
  ++tensors;
  params += numel;
  bytes += row.bytes;
  add_count(by_dtype[dtype_name(row.dtype)], one);
  if (!row.type.empty()) add_count(by_type[row.type], one);
}

namespace {

void add_summary(Summary& into, const Summary& s) {
  into.tensors += s.tensors;
  into.params += s.params;
  into.bytes += s.bytes;
  for (const auto& [k, v] : s.by_dtype) add_count(into.by_dtype[k], v);
  for (const auto& [k, v] : s.by_type) add_count(into.by_type[k], v);
  if (into.model_quant_type.empty()) into.model_quant_type = s.model_quant_type;
  if (into.fa_quant_type.empty()) into.fa_quant_type = s.fa_quant_type;
  if (into.kv_quant_type.empty()) into.kv_quant_type = s.kv_quant_type;
}

Status fill_section(Checkpoint& c, const std::string& glob, const InspectOptions& o, Section& s) {
  s.layout = layout_name(c.layout());
  s.files = c.files();
  const auto& desc = c.description();
  std::unordered_map<std::string, size_t> row_of;
  for (const auto& e : c.tensors()) {
    if (!keep(glob, e.name())) continue;
    TensorRow r;
    r.name = e.name();
    r.dtype = e.info->dtype;
    r.shape = e.info->shape;
    r.bytes = e.info->nbytes();
    if (desc) r.type = desc->type_of(e.name()).value_or("");
    row_of[r.name] = s.tensors.size();
    s.tensors.push_back(std::move(r));
  }
  if (desc) {
    s.summary.model_quant_type = desc->top("model_quant_type").value_or("");
    s.summary.fa_quant_type = desc->top("fa_quant_type").value_or("");
    s.summary.kv_quant_type = desc->top("kv_quant_type").value_or("");
  }
  // Data is read only for statistics, and from a stream to check it through to its end.
  if (o.stats || c.layout() == Layout::stream) {
    const uint64_t total = c.tensors().size();
    uint64_t done = 0, bytes = 0;
    ST_CHECK(c.for_each([&](const TensorEntry& e, ByteView v) -> Status {
      ++done;
      bytes += v.size;
      const auto it = row_of.find(e.name());
      if (o.stats && it != row_of.end() && (stats_supported(e.info->dtype) || e.scale_inv)) {
        if (!v.data && v.size) return make_error(Errc::usage, "tensor data is not readable", c.path(), e.name());
        // A block-scaled FP8 weight's statistics are those of the values it holds (dequantized).
        std::vector<float> values;
        if (e.scale_inv) {
          ST_ASSIGN(const FloatDecoder dec, c.decoder(e));
          values = dec.all(v.data);
        }
        auto st = e.scale_inv ? compute_stats(DType::F32, reinterpret_cast<const uint8_t*>(values.data()), values.size())
                              : compute_stats(e.info->dtype, v.data, e.info->numel());
        if (!st) return std::move(st.error()).in_tensor(e.name());
        s.tensors[it->second].stats = st.value();
      }
      if (o.progress) o.progress({"tensors", done, total, bytes});
      return Status{};
    }));
  }
  for (const auto& r : s.tensors) s.summary.add(r);
  return Status{};
}

}  // namespace

Result<Inventory> inspect(Checkpoint& ckpt, const InspectOptions& options) {
  const std::string& glob = options.filter;
  Inventory inv;
  inv.path = ckpt.path();
  inv.layout = layout_name(ckpt.layout());
  if (ckpt.layout() == Layout::parts) {
    inv.parts = true;
    for (const auto& part : ckpt.parts()) {
      Section s;
      s.name = base_name(part->path());
      ST_CHECK(fill_section(*part, glob, options, s));
      inv.sections.push_back(std::move(s));
    }
  } else {
    Section s;
    ST_CHECK(fill_section(ckpt, glob, options, s));
    inv.sections.push_back(std::move(s));
  }
  for (const auto& s : inv.sections) add_summary(inv.total, s.summary);
  return inv;
}

// ---- differences ----

namespace {

struct Flat {
  std::string name;
  const Checkpoint* ckpt = nullptr;
  const TensorEntry* entry = nullptr;
  std::string type;
};

void flatten_into(const Checkpoint& c, const std::string& prefix, std::vector<Flat>& out) {
  for (const auto& e : c.tensors()) {
    Flat f{prefix + e.name(), &c, &e, ""};
    if (c.description()) f.type = c.description()->type_of(e.name()).value_or("");
    out.push_back(std::move(f));
  }
}

std::vector<Flat> flatten(const Checkpoint& c) {
  std::vector<Flat> out;
  if (c.layout() == Layout::parts) {
    for (const auto& p : c.parts()) flatten_into(*p, base_name(p->path()) + "/", out);
  } else {
    flatten_into(c, "", out);
  }
  return out;
}

struct DiffAcc {
  double max_abs = 0, dot = 0, na = 0, nb = 0;
  void merge(const DiffAcc& o) {
    max_abs = std::max(max_abs, o.max_abs);
    dot += o.dot;
    na += o.na;
    nb += o.nb;
  }
};

DiffAcc diff_chunk(DType ta, const uint8_t* a, DType tb, const uint8_t* b, uint64_t from, uint64_t to) {
  const size_t ea = dtype_bits(ta) / 8, eb = dtype_bits(tb) / 8;
  double xa[kBlock], xb[kBlock];
  DiffAcc acc;
  for (uint64_t i = from; i < to; i += kBlock) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kBlock, to - i));
    load_doubles(ta, a + i * ea, n, xa);
    load_doubles(tb, b + i * eb, n, xb);
    for (size_t j = 0; j < n; ++j) {
      const double x = xa[j], y = xb[j];
      if (x == y || (std::isnan(x) && std::isnan(y))) {
        if (std::isfinite(x)) {
          acc.dot += x * y;
          acc.na += x * x;
          acc.nb += y * y;
        }
        continue;
      }
      const double d = std::fabs(x - y);
      acc.max_abs = std::max(acc.max_abs, std::isnan(d) ? std::numeric_limits<double>::infinity() : d);
      if (std::isfinite(x) && std::isfinite(y)) {
        acc.dot += x * y;
        acc.na += x * x;
        acc.nb += y * y;
      }
    }
  }
  return acc;
}

Result<ValueDiff> compare_values(const Flat& a, const Flat& b) {
  ValueDiff v;
  v.name = a.name;
  const TensorInfo& ia = *a.entry->info;
  const TensorInfo& ib = *b.entry->info;
  const ByteView da = a.ckpt->data(*a.entry), db = b.ckpt->data(*b.entry);
  if ((!da.data && da.size) || (!db.data && db.size))
    return make_error(Errc::usage, "tensor data is not readable", a.ckpt->path(), a.name);
  v.identical = ia.dtype == ib.dtype && ia.shape == ib.shape && da.size == db.size &&
                (da.size == 0 || std::memcmp(da.data, db.data, da.size) == 0);
  v.comparable = ia.numel() == ib.numel() && stats_supported(ia.dtype) && stats_supported(ib.dtype);
  if (!v.comparable) return v;
  if (v.identical) {
    v.max_abs_diff = 0;
    v.cosine = 1;
    return v;
  }
  const uint64_t numel = ia.numel(), chunks = chunk_count(numel);
  std::vector<DiffAcc> parts(chunks);
  for_each_chunk(chunks, [&](uint64_t c) {
    parts[c] = diff_chunk(ia.dtype, da.data, ib.dtype, db.data, c * kChunk, std::min(numel, (c + 1) * kChunk));
  });
  DiffAcc total;
  for (const auto& p : parts) total.merge(p);
  v.max_abs_diff = total.max_abs;
  if (total.na == 0 && total.nb == 0) v.cosine = 1;
  else if (total.na == 0 || total.nb == 0) v.cosine = 0;
  else v.cosine = total.dot / std::sqrt(total.na * total.nb);
  a.ckpt->release(*a.entry);
  b.ckpt->release(*b.entry);
  return v;
}

void diff_tops(const Description& a, const Description& b, CheckpointDiff& d) {
  for (const auto& [key, ab] : compare(a, b).changed_top) d.changed_top.push_back({key, ab.first, ab.second});
}

}  // namespace

bool CheckpointDiff::equal() const {
  if (!only_a.empty() || !only_b.empty() || !changed.empty() || !changed_type.empty() || !changed_top.empty())
    return false;
  for (const auto& v : values)
    if (!v.identical) return false;
  return true;
}

Result<CheckpointDiff> diff_checkpoints(const Checkpoint& a, const Checkpoint& b, const DiffOptions& options) {
  const std::string& glob = options.filter;
  CheckpointDiff d;
  d.a = a.path();
  d.b = b.path();
  d.values_compared = options.values;
  const auto fa = flatten(a), fb = flatten(b);
  std::unordered_map<std::string, size_t> in_b;
  for (size_t i = 0; i < fb.size(); ++i) in_b[fb[i].name] = i;
  std::unordered_map<std::string, bool> seen;
  for (const auto& x : fa) {
    if (!keep(glob, x.name)) continue;
    seen[x.name] = true;
    const auto it = in_b.find(x.name);
    if (it == in_b.end()) {
      d.only_a.push_back(x.name);
      d.only_a_type.push_back(x.type);
      continue;
    }
    const Flat& y = fb[it->second];
    const TensorInfo &ia = *x.entry->info, &ib = *y.entry->info;
    if (ia.dtype != ib.dtype || ia.shape != ib.shape) d.changed.push_back({x.name, ia.dtype, ib.dtype, ia.shape, ib.shape});
    if (x.type != y.type) d.changed_type.push_back({x.name, x.type, y.type});
    if (options.values) {
      ST_ASSIGN(auto v, compare_values(x, y));
      d.values.push_back(std::move(v));
    }
  }
  for (const auto& y : fb)
    if (keep(glob, y.name) && !seen.count(y.name)) {
      d.only_b.push_back(y.name);
      d.only_b_type.push_back(y.type);
    }
  const Description none;
  if (a.description() || b.description())
    diff_tops(a.description() ? *a.description() : none, b.description() ? *b.description() : none, d);
  return d;
}

Result<CheckpointDiff> diff_descriptions(const Description& a, const Description& b, const std::string& filter) {
  const std::string& glob = filter;
  CheckpointDiff d;
  const DescriptionDiff dd = compare(a, b);
  for (const auto& n : dd.only_a)
    if (keep(glob, n)) {
      d.only_a.push_back(n);
      d.only_a_type.push_back(a.type_of(n).value_or(""));
    }
  for (const auto& n : dd.only_b)
    if (keep(glob, n)) {
      d.only_b.push_back(n);
      d.only_b_type.push_back(b.type_of(n).value_or(""));
    }
  for (const auto& [n, ab] : dd.changed_type)
    if (keep(glob, n)) d.changed_type.push_back({n, ab.first, ab.second});
  for (const auto& [k, ab] : dd.changed_top) d.changed_top.push_back({k, ab.first, ab.second});
  return d;
}

}  // namespace st
