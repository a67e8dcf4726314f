// st-sparsify: prune the decoder linears (SparseGPT, Wanda, magnitude, N:M) and quantize them as W8A8S.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "bin/common/cli.hpp"
#include "bin/common/json.hpp"
#include "bin/common/progress.hpp"
#include "bin/common/scheme_flags.hpp"
#include "bin/common/static_flags.hpp"
#include "libst/format/checkpoint.hpp"
#include "libst/core/parallel.hpp"
#include "libst/arch/architecture.hpp"
#include "libst/quant/quant_plan.hpp"
#include "libst/sparse/sparsegpt.hpp"
#include "libst/sparse/sparsify.hpp"
#include "libst/format/stats.hpp"

namespace {

double frac(uint64_t a, uint64_t b) { return b ? static_cast<double>(a) / static_cast<double>(b) : 0.0; }

struct LayerTotal {
  uint64_t elements = 0, zeros = 0, pruned = 0;
  int linears = 0;
};

std::map<int, LayerTotal> by_layer(const st::SparsifySummary& s) {
  std::map<int, LayerTotal> m;
  for (const auto& l : s.linears) {
    auto& t = m[l.layer];
    t.elements += static_cast<uint64_t>(l.n * l.k);
    t.zeros += l.zeros;
    t.pruned += l.pruned;
    t.linears++;
  }
  return m;
}

nlohmann::ordered_json to_json(const st::SparsifySummary& s, const st::PruneSpec& p) {
  nlohmann::ordered_json j;
  j["method"] = st::sparsify_method_name(p.method);
  if (p.method == st::SparsifyMethod::nm) j["nm"] = std::to_string(p.nm_n) + ":" + std::to_string(p.nm_m);
  else j["ratio"] = p.ratio;
  j["protect"] = p.protect;
  j["linears_sparsified"] = s.linears.size();
  j["linears_float"] = s.linears_float;
  j["fallbacks"] = s.fallbacks;
  j["elements"] = s.elements;
  j["pruned"] = s.pruned;
  j["zeros"] = s.zeros;
  j["sparsity"] = frac(s.zeros, s.elements);
  auto& layers = j["layers"] = nlohmann::ordered_json::array();
  for (const auto& [layer, t] : by_layer(s))
    layers.push_back({{"layer", layer}, {"linears", t.linears}, {"elements", t.elements}, {"zeros", t.zeros},
                      {"sparsity", frac(t.zeros, t.elements)}});
  auto& lin = j["linears"] = nlohmann::ordered_json::array();
  for (const auto& l : s.linears)
    lin.push_back({{"name", l.prefix}, {"layer", l.layer}, {"shape", {l.n, l.k}}, {"pruned", l.pruned},
                   {"zeros", l.zeros}, {"sparsity", frac(l.zeros, static_cast<uint64_t>(l.n * l.k))}});
  return j;
}

// Memory the system can give without swapping (MemAvailable), or half the physical memory.
uint64_t available_memory() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  uint64_t kb = 0;
  std::string unit;
  while (f >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb * 1024;
  return static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) / 2;
}

// SparseGPT's data without --data: the file st-calibrate read (__metadata__ "st.stats.data"),
// unchanged, with the samples, length and tokenizer it used unless given; else an error with the fix.
st::Result<std::string> recorded_data(const st::ActivationStats& stats, const std::string& stats_path,
                                      st::model::DataOptions& o) {
  const std::string fix = ": give --data FILE (the calibration data), or --method wanda to prune without it";
  auto recorded = st::model::recorded_data(stats.metadata);
  if (!recorded) {
    st::Error e = recorded.error();
    e.file = stats_path;
    e.message += fix;
    return e;
  }
  if (!*recorded)
    return st::make_error(st::Errc::usage, "sparsegpt (the default method) needs calibration data and these statistics "
                                           "name none" + fix, stats_path);
  const auto& r = **recorded;
  if (o.samples == 0) o.samples = r.options.samples;
  if (o.seq_len == 0) o.seq_len = r.options.seq_len;
  if (o.tokenizer.empty()) o.tokenizer = r.options.tokenizer;
  return r.path;
}

// SparseGPT's Gram matrices grow with the square of the widths; one layer's are alive at a time
// (with one layer's weights and the sequences' hidden states). The default refuses what would
// not fit in the memory this machine has free; an explicit --method sparsegpt (forced) only warns.
st::Status check_gram_memory(const st::Architecture& arch, bool forced) {
  const uint64_t need = st::gram_bytes(arch, st::threads()), avail = available_memory();
  if (need <= avail / 5 * 4) return {};
  char buf[256];
  std::snprintf(buf, sizeof buf, "SparseGPT would hold %.1f GiB of one layer's input Gram matrices; %.1f GiB of memory is free",
                need / 1073741824.0, avail / 1073741824.0);
  if (!forced)
    return st::make_error(st::Errc::usage,
                          std::string(buf) + ": give --method wanda, fewer -j threads, or --method sparsegpt to run it anyway");
  st::cli::warn(buf);
  return {};
}

// --dry-run: every linear's scheme (W8A8S or FLOAT) and why, as st-quant-w8a8 prints it; reads headers only.
int dry_run(const std::string& model, const std::vector<std::string>& float_globs,
            const std::vector<st::SchemeRule>& rules, bool json) {
  auto ckpt = st::Checkpoint::open(model);
  if (!ckpt) return st::cli::report(ckpt.error());
  auto arch = st::Architecture::of(**ckpt);
  if (!arch) return st::cli::report(arch.error());
  st::QuantizeOptions o;
  o.mode = st::W8A8Mode::w8a8s;
  o.float_globs = float_globs;
  o.scheme_rules = rules;
  auto schemes = st::choose_schemes(*arch, o, (*ckpt)->path());
  if (!schemes) return st::cli::report(schemes.error());
  const auto types = st::checkpoint_types(*arch, schemes->by_prefix(), st::LinearScheme::w8a8s, false);
  st::cli::print_scheme_plan(*schemes, types, json);
  return st::cli::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Prune every quantized linear of a float model per output row (SparseGPT, Wanda, magnitude or N:M), then\n"
               "quantize it as W8A8 static the way st-quant-w8a8 does (smoothing, range method): a W8A8S directory\n"
               "for st-shard and st-compress.",
               "st-sparsify"};
  std::string model, stats_path, out_path, method = "sparsegpt", nm = "2:4";
  st::PruneSpec spec;
  bool force = false, json = false, quiet = false;
  app.add_option("MODEL", model, "float checkpoint: file, directory or - for stdin")->required();
  app.add_option("--stats", stats_path, "activation statistics from st-calibrate (required but with --dry-run)")
      ->check(st::cli::not_stdin());
  auto* method_option =
      app.add_option("--method", method,
                     "sparsegpt (the default: OBS error compensation from the inputs' Gram matrices over --data,\n"
                     "or the calibration data the statistics name), wanda (|W|*||x||2, from the statistics alone),\n"
                     "magnitude (|W|) or nm (N:M structured, Wanda scores)")
          ->check(CLI::IsMember({"sparsegpt", "wanda", "magnitude", "nm"}));
  std::string data;
  st::model::DataOptions data_options;
  app.add_option("--data", data,
                 "calibration data for sparsegpt: token ids (JSONL input_ids, raw uint32 with --seq-len) or text\n"
                 "(JSONL \"text\", *.txt), as st-calibrate reads it")
      ->check(st::cli::not_stdin());
  app.add_option("--samples", data_options.samples, "with --data: use the first N sequences (default: all)")
      ->check(CLI::Range(int64_t(1), INT64_MAX));
  app.add_option("--seq-len", data_options.seq_len, "with --data: tokens per sequence (text: packs, as st-calibrate)");
  app.add_option("--tokenizer", data_options.tokenizer, "with text --data: tokenizer.json or its directory (default: MODEL's)")
      ->check(st::cli::not_stdin());
  app.add_option("--ratio", spec.ratio, "fraction of each output row to zero (default 0.5)");
  app.add_option("--nm", nm, "with --method nm: keep N of every M consecutive weights (default 2:4)");
  app.add_option("--protect", spec.protect, "fraction of each row's largest |W| never pruned (default 0)");
  std::vector<std::string> float_globs;
  app.add_option("--float", float_globs,
                 "keep linears matching this glob (on the prefix or weight name) float, with their fused group;\n"
                 "repeatable")
      ->type_name("GLOB")
      ->allow_extra_args(false);
  st::cli::SchemeFlags scheme_flags;
  st::cli::add_scheme_flags(app, scheme_flags, "W8A8S: pruned, or FLOAT");
  st::cli::StaticFlags static_flags;
  st::cli::add_static_flags(app, static_flags);
  st::cli::add_output_option(app, out_path,
                             "output directory, or - for a safetensors stream on stdout (required but with --dry-run)",
                             /*required=*/false);
  st::cli::add_force_flag(app, force);
  st::cli::add_threads_option(app);
  st::cli::add_progress_option(app);
  st::cli::add_json_flag(app, json, "print the sparsity report (with --dry-run: the plan) as JSON on stdout");
  st::cli::add_quiet_flag(app, quiet, "no progress and no report on stderr");
  return st::cli::run(app, argc, argv, [&] {
    bool fa_quant = false;
    auto rules = st::cli::scheme_rules(scheme_flags, static_flags, fa_quant);
    if (!rules) return st::cli::report(rules.error());
    if (fa_quant || scheme_flags.recipe_fa_stat || scheme_flags.recipe_fa_fallback)
      return st::cli::report(st::make_error(st::Errc::usage, "recipe " + scheme_flags.recipe +
                                                                 ": st-sparsify does not quantize attention (fa_*)"));
    if (scheme_flags.dry_run) return dry_run(model, float_globs, *rules, json);
    if (stats_path.empty()) return st::cli::report(st::make_error(st::Errc::usage, "give --stats STATS"));
    if (out_path.empty()) return st::cli::report(st::make_error(st::Errc::usage, "give -o OUTPUT (or --dry-run)"));
    if (auto both = st::cli::json_and_stream(json, out_path); !both) return st::cli::report(both.error());
    if (method == "nm") {
      int n = 0, m = 0;
      char tail = 0;
      if (std::sscanf(nm.c_str(), "%d:%d%c", &n, &m, &tail) != 2)
        return st::cli::report(st::make_error(st::Errc::usage, "--nm '" + nm + "' is not N:M (e.g. 2:4)"));
      spec.nm_n = n;
      spec.nm_m = m;
    }
    data_options.warn = st::cli::warn;
    auto stats = st::load_stats(stats_path);
    if (!stats) return st::cli::report(stats.error());
    spec.method = method == "magnitude" ? st::SparsifyMethod::magnitude
                  : method == "nm"      ? st::SparsifyMethod::nm
                  : method == "wanda"   ? st::SparsifyMethod::wanda
                                        : st::SparsifyMethod::sparsegpt;
    const bool sparsegpt = spec.method == st::SparsifyMethod::sparsegpt;
    if (sparsegpt && data.empty()) {
      auto recorded = recorded_data(*stats, stats_path, data_options);
      if (!recorded) return st::cli::report(recorded.error());
      data = *recorded;
    } else if (!sparsegpt && !data.empty()) {
      return st::cli::report(st::make_error(st::Errc::usage, "--data is for --method sparsegpt, not " + method));
    }
    auto out = st::cli::open_output({out_path, /*stream=*/true, force, {model, stats_path, data, scheme_flags.recipe}, {}});
    if (!out) return st::cli::report(out.error());
    auto ckpt = st::Checkpoint::open(model);
    if (!ckpt) return st::cli::report(ckpt.error());
    auto arch = st::Architecture::of(**ckpt);
    if (!arch) return st::cli::report(arch.error());
    st::cli::ProgressLine progress(quiet);
    st::SparseGptData gpt_data{data, data_options};
    if (sparsegpt) {
      auto fits = check_gram_memory(*arch, /*forced=*/method_option->count() > 0);
      if (!fits) return st::cli::report(fits.error());
      if (gpt_data.options.tokenizer.empty()) gpt_data.options.tokenizer = st::model::model_tokenizer(model);
    }
    st::SparsifyOptions o;
    o.prune = spec;
    o.stats = &*stats;
    o.stats_path = stats_path;
    o.float_globs = float_globs;
    o.scheme_rules = *rules;
    if (sparsegpt) o.sparsegpt_data = &gpt_data;
    o.output = out->get();
    auto prep_opts = st::cli::static_prep_options(static_flags);
    if (!prep_opts) return st::cli::report(prep_opts.error());
    o.static_prep = *prep_opts;
    o.progress = progress.callback();
    o.warn = st::cli::warn;
    auto s = st::sparsify(**ckpt, o);
    progress.finish();
    if (!s) return st::cli::report(s.error());
    for (const auto& f : s->fallbacks)
      st::cli::warn("'" + f + "': no calibration token reached this expert: pruned by magnitude");
    st::cli::print_static_notes(s->notes, quiet, static_flags);
    if (!quiet) {
      const char* tool = st::cli::tool_name().c_str();
      for (const auto& [layer, t] : by_layer(*s))
        std::fprintf(stderr, "%s: layer %d: %5.1f%% zeros (%d linears, %llu weights)\n", tool, layer,
                     100 * frac(t.zeros, t.elements), t.linears, static_cast<unsigned long long>(t.elements));
      std::fprintf(stderr, "%s: overall: %.1f%% zeros (%.1f%% pruned by %s) in %zu linears; %zu kept float\n", tool,
                   100 * frac(s->zeros, s->elements), 100 * frac(s->pruned, s->elements), method.c_str(),
                   s->linears.size(), s->linears_float);
    }
    if (json) st::cli::print_json(to_json(*s, spec));
    return st::cli::kExitOk;
  });
}
