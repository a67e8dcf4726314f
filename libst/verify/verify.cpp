// st-verify's library side: finds the weight files of a checkpoint, checks their integrity
// (xxhsum files, per-tensor hashes, parsing) and drives the structural and numeric checks.
#include "libst/verify/verify.hpp"
#include "libst/core/paths.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "libst/format/checksum.hpp"
#include "libst/format/json.hpp"
#include "libst/format/names.hpp"
#include "libst/format/parts.hpp"
#include "libst/verify/internal.hpp"

namespace st {

std::string Problem::str() const {
  std::string out = check + ": ";
  if (!file.empty()) out += "'" + file + "': ";
  if (!tensor.empty()) out += "tensor '" + tensor + "': ";
  return out + message;
}

namespace verify_detail {

const std::string& Unit::file_of(const std::string& name) const {
  static const std::string none;
  const Loc* l = find(name);
  return l ? file_names[l->file] : none;
}

namespace {

std::optional<std::string> read_text(const std::string& path) {
  auto text = read_file_text(path);
  if (!text) return std::nullopt;
  return std::move(text).value();
}

// Copies stdin into an unlinked temporary file; returns the descriptor.
Result<int> spool_stdin() {
  const char* tmpdir = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmpdir && *tmpdir ? tmpdir : "/tmp") + "/st-verify-XXXXXX";
  const int fd = mkstemp(tmpl.data());
  if (fd < 0) return make_error(Errc::io, std::string("cannot create a spool file: ") + std::strerror(errno), tmpl);
  ::unlink(tmpl.c_str());
  std::vector<char> buf(1 << 20);
  for (;;) {
    const ssize_t n = ::read(0, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return make_error(Errc::io, std::string("cannot read stdin: ") + std::strerror(errno), "<stdin>");
    }
    if (n == 0) break;
    for (ssize_t done = 0; done < n;) {
      const ssize_t w = ::write(fd, buf.data() + done, static_cast<size_t>(n - done));
      if (w < 0) {
        ::close(fd);
        return make_error(Errc::io, std::string("cannot spool stdin: ") + std::strerror(errno), "<stdin>");
      }
      done += w;
    }
  }
  return fd;
}

// Compares a file's hash with each line of its FILE.xxh3 (names resolved beside it).
void check_checksum_file(const std::string& file, std::optional<uint64_t> known_hash, Sink& sink) {
  const std::string sum_path = file + kChecksumSuffix;
  const auto text = read_text(sum_path);
  if (!text) {
    sink.add("integrity", sum_path, "", "cannot read checksum file");
    return;
  }
  auto entries = parse_checksum_file(*text);
  if (!entries) {
    sink.add("integrity", sum_path, "", entries.error().message);
    return;
  }
  ++sink.report->file_checksums;
  for (const auto& e : *entries) {
    auto joined = join_plain_name(dir_name(file), e.name);
    if (!joined) {
      sink.add("integrity", sum_path, "", "a line names " + joined.error().message + ": not a file beside it");
      continue;
    }
    const std::string& target = *joined;
    std::optional<uint64_t> h;
    if (e.name == base_name(file) && known_hash) {
      h = known_hash;
    } else {
      auto r = xxh3_file(target);
      if (!r) {
        sink.add("integrity", sum_path, "", "names '" + e.name + "', which cannot be read: " + r.error().message);
        continue;
      }
      h = *r;
    }
    if (*h != e.hash)
      sink.add("integrity", target, "", "XXH3 checksum mismatch: " + base_name(sum_path) + " says " + xxh3_hex(e.hash) +
                                            ", the file hashes to " + xxh3_hex(*h));
  }
}

// One pass over an opened file: the whole-file hash (for FILE.xxh3) and each tensor's hash
// (against "st.xxh3"), tensor by tensor from the mapping, releasing pages as it goes.
void check_file_integrity(const Unit& u, size_t fi, bool has_sum_file, Sink& sink) {
  const SafetensorsFile& f = *u.files[fi];
  const std::string& name = u.file_names[fi];
  const Header& h = f.header();
  std::optional<std::map<std::string, uint64_t>> tensor_sums;
  if (auto it = h.metadata.find(kTensorChecksumKey); it != h.metadata.end()) {
    auto parsed = parse_tensor_checksums(it->second);
    if (!parsed) sink.add("integrity", name, parsed.error().tensor, parsed.error().message);
    else tensor_sums = std::move(parsed.value());
  }
  if (!has_sum_file && !tensor_sums) return;
  Xxh3 whole;
  if (has_sum_file) {  // the header bytes, read again from the file (the mapping is private)
    std::vector<uint8_t> head(h.data_start());
    const int fd = ::open(f.path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 || pread(fd, head.data(), head.size(), 0) != static_cast<ssize_t>(head.size())) {
      if (fd >= 0) ::close(fd);
      sink.add("integrity", name, "", "cannot read the header again for its checksum");
      has_sum_file = false;
    } else {
      ::close(fd);
      whole.update(head.data(), head.size());
    }
  }
  for (const auto& t : h.tensors) {
    const ByteView v = f.data(t);
    if (has_sum_file) whole.update(v.data, v.size);
    if (tensor_sums) {
      const auto it = tensor_sums->find(t.name);
      if (it == tensor_sums->end()) {
        sink.add("integrity", name, t.name, std::string("no hash in __metadata__ '") + kTensorChecksumKey + "'");
      } else {
        ++sink.report->tensor_checksums;
        const uint64_t got = xxh3_64(v.data, v.size);
        if (got != it->second)
          sink.add("integrity", name, t.name, "XXH3 mismatch: data hashes to " + xxh3_hex(got) + ", __metadata__ says " +
                                                  xxh3_hex(it->second));
      }
    }
    f.release(t);
  }
  if (tensor_sums)
    for (const auto& [tname, hash] : *tensor_sums)
      if (!h.find(tname))
        sink.add("integrity", name, tname, std::string("hashed in __metadata__ '") + kTensorChecksumKey + "' but not stored");
  if (has_sum_file) check_checksum_file(f.path(), whole.digest(), sink);
}

// What a writer says it did to the weights (Unit::smoothed, Unit::weights_updated) and the attention
// blocks it kept float (Unit::fa_fallback).
void note_weight_markers(Unit& u, const Metadata& md) {
  if (const auto it = md.find(kFaFallbackKey); it != md.end())
    for (size_t b = 0, e; b <= it->second.size(); b = e + 1) {
      e = std::min(it->second.find(',', b), it->second.size());
      if (e > b) u.fa_fallback.insert(it->second.substr(b, e - b));
    }
  for (const auto& [key, value] : md) {
    if (value != "1" || !ends_with(key, ".weights_updated")) continue;
    (key == "st.quant.weights_updated" ? u.smoothed : u.weights_updated) = true;
  }
}

// Opens one weight file into the unit; a file that does not parse is a problem, not an error.
void add_weight_file(Unit& u, const std::string& path, const std::string& display, Sink& sink) {
  const bool has_sum = display != "<stdin>" && path_exists(path + kChecksumSuffix);
  auto f = SafetensorsFile::open(path);
  sink.report->files.push_back(display);
  if (!f) {
    sink.add("integrity", display, f.error().tensor, "does not parse: " + f.error().message);
    ++u.unreadable;
    if (has_sum) check_checksum_file(path, std::nullopt, sink);
    return;
  }
  u.files.push_back(std::move(f.value()));
  u.file_names.push_back(display);
  const size_t fi = u.files.size() - 1;
  note_weight_markers(u, u.files[fi]->header().metadata);
  check_file_integrity(u, fi, has_sum, sink);
  sink.meter.advance(u.files[fi]->header().data_start() + u.files[fi]->header().buffer_bytes);
  if (const auto off = misaligned_tensors(u.files[fi]->header()); !off.empty())
    sink.note("'" + display + "': " + std::to_string(off.size()) + " tensors not aligned to their element size (e.g. '" +
              off[0]->name + "'): valid, but a loader cannot map them zero-copy (st-tools writes them aligned)");
  for (const auto& t : u.files[fi]->header().tensors) {
    if (u.tensors.count(t.name)) {
      sink.add("structure", display, t.name, "also stored in '" + u.file_of(t.name) + "'");
      continue;
    }
    u.tensors[t.name] = Loc{fi, &t};
    u.order.push_back(t.name);
  }
}

void parse_config(Unit& u, const std::string& text, const std::string& where, Sink& sink) {
  auto parsed = parse_json(text, kConfigJsonRules);
  if (!parsed || !parsed->is_object()) {
    sink.add("structure", where, "", parsed ? "config.json is not a JSON object" : parsed.error().message);
    return;
  }
  u.config = std::move(parsed.value());
  // The values the tools would refuse (a zero rope_theta, heads that do not divide, ...) are problems;
  // an architecture libst does not know is not.
  auto model = model::parse_config(u.config);
  if (model) u.model = std::move(model.value());
  else if (model.error().code != Errc::unsupported) sink.add("structure", where, "", model.error().message);
}

void parse_description(Unit& u, const std::string& text, Sink& sink) {
  auto d = Description::parse(text);
  if (!d) sink.add("structure", u.desc_file, "", d.error().message);
  else u.desc = std::move(d.value());
}

// A single file or a spooled stream: side files come from __metadata__ "st.file.<name>".
void load_side_files_from_metadata(Unit& u, Sink& sink) {
  if (u.files.empty()) return;
  const Metadata& m = u.files[0]->header().metadata;
  for (const std::string_view p : {kSideFilePrefix, kSideFileBase64Prefix})
    for (auto it = m.lower_bound(std::string(p)); it != m.end() && it->first.compare(0, p.size(), p) == 0; ++it)
      if (Status ok = check_plain_name(it->first.substr(p.size())); !ok)
        sink.add("structure", u.file_names[0], "", "side file in __metadata__: " + ok.error().message);
  const std::string prefix(kSideFilePrefix);
  if (auto it = m.find(prefix + "config.json"); it != m.end()) parse_config(u, it->second, u.file_names[0], sink);
  if (auto it = m.find(prefix + kDescriptionFile); it != m.end()) {
    u.desc_file = u.file_names[0];
    parse_description(u, it->second, sink);
  }
}

// An HF-style index (weight_map: tensor -> file) agrees with where the tensors are.
void check_index(const Unit& u, const std::string& dir, const std::string& name, Sink& sink) {
  const std::string path = dir + "/" + name;
  auto parsed = parse_json(read_text(path).value_or(""), JsonRules{"index", 8});
  if (!parsed) return sink.add("structure", path, "", parsed.error().message);
  nlohmann::json index = std::move(parsed.value());
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
    return sink.add("structure", path, "", "index has no 'weight_map' object");
  int listed = 0;
  for (auto& [tensor, file] : index["weight_map"].items()) {
    if (Status ok = file.is_string() ? check_plain_name(file.get<std::string>()) : Status{}; !ok) {
      if (listed++ < 5) sink.add("structure", path, tensor, "weight_map: " + ok.error().message);
      continue;
    }
    const std::string where = file.is_string() ? dir + "/" + file.get<std::string>() : "";
    if (!u.find(tensor)) {
      if (!u.unreadable && listed++ < 5) sink.add("structure", path, tensor, "indexed but not stored");
    } else if (u.file_of(tensor) != where && listed++ < 5) {
      sink.add("structure", path, tensor, "indexed in '" + (file.is_string() ? file.get<std::string>() : file.dump()) +
                                              "' but stored in '" + base_name(u.file_of(tensor)) + "'");
    }
  }
  for (const auto& t : u.order)
    if (!index["weight_map"].contains(t) && listed++ < 5) sink.add("structure", path, t, "stored but not in the index");
}

// Weight files of a directory: quant_model_weight*.safetensors, else an HF layout's.
std::vector<std::string> weight_files(const std::string& dir) {
  std::vector<std::string> out, hf;
  for (const auto& n : list_directory(dir)) {
    if (!ends_with(n, ".safetensors")) continue;
    if (n.rfind("quant_model_weight", 0) == 0) out.push_back(n);
    else if (n == "model.safetensors" || n.rfind("model-", 0) == 0) hf.push_back(n);
  }
  return out.empty() ? hf : out;
}

// Loads a directory unit. Returns false when it holds nothing that looks like a checkpoint.
bool load_dir_unit(Unit& u, const std::string& dir, Sink& sink) {
  const auto files = weight_files(dir);
  const std::string desc_path = dir + "/" + kDescriptionFile;
  const bool has_desc = path_exists(desc_path);
  if (files.empty() && !has_desc) return false;
  u.desc_file = desc_path;
  if (files.empty()) sink.add("structure", dir, "", "no quant_model_weight_*.safetensors weight file");
  for (const auto& f : files) add_weight_file(u, dir + "/" + f, dir + "/" + f, sink);
  for (const auto& n : list_directory(dir))
    if (ends_with(n, ".safetensors.index.json")) check_index(u, dir, n, sink);
  if (auto cfg = read_text(dir + "/config.json")) parse_config(u, *cfg, dir + "/config.json", sink);
  if (has_desc) {
    if (auto text = read_text(desc_path)) parse_description(u, *text, sink);
    else sink.add("structure", desc_path, "", "cannot read");
  } else if (!files.empty() && files[0].rfind("quant_model_weight", 0) == 0) {
    sink.add("structure", desc_path, "", "missing: the weight files are quantized but nothing describes them");
  }
  return true;
}

// st-shard's record in a part's weight file must agree with the folder holding it: a part
// moved into another rank's folder is what merge and eval refuse.
void read_shard_record(Unit& u, const PartFolder& p, Sink& sink) {
  if (u.files.empty()) return;
  const std::string& file = u.file_names[0];
  auto record = read_part_record(u.files[0]->header().metadata, file);
  if (!record) return sink.add("structure", file, "", record.error().message);
  if (!*record) return;
  if ((*record)->tp != p.count || (*record)->rank != p.rank)
    return sink.add("structure", file, "", "st.shard says rank " + std::to_string((*record)->rank) + " of " +
                                               std::to_string((*record)->tp) + ", but the file is in '" + p.name + "'");
  u.shard = std::move(*record);
  // st-shard and st-compress keep their input's metadata inside st.shard.source.
  if (auto origin = parse_origin(u.shard->source, file))
    for (const auto& f : origin->files) note_weight_markers(u, f.metadata);
}

}  // namespace
}  // namespace verify_detail

using namespace verify_detail;

Result<VerifyReport> verify(const std::string& path, const VerifyOptions& options) {
  VerifyReport report;
  report.path = path;
  Sink sink{&report, Meter{options.progress, {}}};
  sink.meter.start("weight files read", 0);

  std::unique_ptr<Checkpoint> against;
  if (!options.against.empty()) {
    auto a = Checkpoint::open(options.against);
    if (!a) return std::move(a).error();
    if (a.value()->description())
      return make_error(Errc::usage, "--against must name the float model, not a quantized checkpoint", options.against);
    against = std::move(a.value());
    report.against = true;
  }

  std::vector<std::unique_ptr<Unit>> units;
  if (path == "-") {
    report.layout = "stream";
    ST_ASSIGN(const int fd, spool_stdin());
    auto u = std::make_unique<Unit>();
    add_weight_file(*u, "/proc/self/fd/" + std::to_string(fd), "<stdin>", sink);
    ::close(fd);  // the mapping keeps the data
    load_side_files_from_metadata(*u, sink);
    units.push_back(std::move(u));
  } else if (is_directory(path)) {
    auto u = std::make_unique<Unit>();
    if (load_dir_unit(*u, path, sink)) {
      report.layout = (u->desc || path_exists(u->desc_file)) ? "quantized" : "hf";
      units.push_back(std::move(u));
    } else {
      const PartScan scan = scan_part_folders(path);
      if (scan.empty())
        return make_error(Errc::format,
                          "no checkpoint here: expected quant_model_description.json with "
                          "quant_model_weight_*.safetensors, model*.safetensors, or part{r}-of-{n}/ folders",
                          path);
      report.layout = "parts";
      // The rule merge and eval apply (libst/format/parts.hpp): its first violation is a problem;
      // the folders that parse are still checked.
      if (Status set = check_part_set(path, scan); !set) sink.add("structure", set.error().file, "", set.error().message);
      for (const auto& p : scan.folders) {
        auto pu = std::make_unique<Unit>();
        pu->label = p.name;
        pu->part = p.rank;
        pu->parts = p.count;
        if (!load_dir_unit(*pu, path + "/" + p.name, sink))
          sink.add("structure", path + "/" + p.name, "", "part folder holds no weight files and no description");
        read_shard_record(*pu, p, sink);
        units.push_back(std::move(pu));
      }
    }
  } else if (path_exists(path)) {
    report.layout = "file";
    auto u = std::make_unique<Unit>();
    add_weight_file(*u, path, path, sink);
    load_side_files_from_metadata(*u, sink);
    units.push_back(std::move(u));
  } else {
    return make_error(Errc::io, "no such file or directory", path);
  }

  size_t linears = 0;
  for (const auto& u : units) linears += count_linears(*u);
  sink.meter.start("linears checked", linears);
  std::optional<Architecture> float_arch;
  if (against) {
    auto a = Architecture::of(*against);
    if (a) float_arch = std::move(*a);
  }
  CheckContext ctx{sink, against.get(), float_arch ? &*float_arch : nullptr, {}, 0};
  for (const auto& u : units) {
    report.tensors += u->order.size();
    if (u->desc && report.model_quant_type.empty()) report.model_quant_type = u->desc->model_quant_type();
    check_unit(*u, ctx);
  }
  if (units.size() > 1 || report.layout == "parts") check_parts(units, ctx);
  if (report.file_checksums == 0 && report.tensor_checksums == 0)
    sink.note("no checksums present (no FILE.xxh3, no per-tensor hashes): integrity rests on parsing and arithmetic");
  if (ctx.bias_unknown)
    sink.note("quant_bias of " + std::to_string(ctx.bias_unknown) +
              " linears not checked: the float bias is unknown without --against");
  return report;
}

namespace {
nlohmann::ordered_json number(double v) {
  if (std::isfinite(v)) return v;
  return v > 0 ? "inf" : (v < 0 ? "-inf" : "nan");
}
}  // namespace

nlohmann::ordered_json verify_report_json(const VerifyReport& r, size_t worst) {
  using oj = nlohmann::ordered_json;
  oj root = oj::object();
  root["path"] = r.path;
  root["layout"] = r.layout;
  root["model_quant_type"] = r.model_quant_type;
  root["ok"] = r.problems.empty();
  root["files"] = r.files;
  oj sum = oj::object();
  sum["tensors"] = r.tensors;
  sum["linears"] = r.linears;
  sum["file_checksums"] = r.file_checksums;
  sum["tensor_checksums"] = r.tensor_checksums;
  sum["against"] = r.against;
  sum["problems"] = r.problems.size();
  root["summary"] = sum;
  oj probs = oj::array();
  for (const auto& p : r.problems)
    probs.push_back(oj{{"check", p.check}, {"file", p.file}, {"tensor", p.tensor}, {"message", p.message}});
  root["problems"] = probs;
  root["notes"] = r.notes;
  if (r.against) {
    auto lin = [](const LinearNumerics& n) {
      return oj{{"name", n.name},           {"type", n.type},         {"sqnr_db", number(n.sqnr_db)},
                {"cosine", number(n.cosine)}, {"max_step_error", number(n.max_step_error)},
                {"off_step", n.off_step},   {"pruned", n.pruned},     {"elements", n.elements}};
    };
    oj all = oj::array();
    for (const auto& n : r.numerics) all.push_back(lin(n));
    root["linears"] = all;
    std::vector<const LinearNumerics*> sorted;
    for (const auto& n : r.numerics) sorted.push_back(&n);
    std::stable_sort(sorted.begin(), sorted.end(),
                     [](const LinearNumerics* a, const LinearNumerics* b) { return a->sqnr_db < b->sqnr_db; });
    oj w = oj::array();
    for (size_t i = 0; i < sorted.size() && i < worst; ++i) w.push_back(sorted[i]->name);
    root["worst"] = w;
  }
  return root;
}

}  // namespace st
